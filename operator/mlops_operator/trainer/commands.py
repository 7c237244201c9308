"""`mlops train`: the trainer on a laptop, without a cluster.

Each flag sets one field of :class:`~mlops_operator.trainer.settings.TrainerSettings`,
the same settings the training pod reads from its environment; flags left out
fall back to ``MLOPS_*`` variables, then to the defaults.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["parse_param", "register"]

_PYTHON_SPELLINGS: dict[str, Any] = {"None": None, "True": True, "False": False}


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it is JSON (3, 0.5, true, null, [64, 32])
    or as a Python constant (None, True, False), and as plain text otherwise."""
    key, separator, raw = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if raw in _PYTHON_SPELLINGS:
        return key, _PYTHON_SPELLINGS[raw]
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _columns(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _train(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from mlops_operator.trainer.run import report
    from mlops_operator.trainer.settings import TrainerSettings, describe_invalid

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    values: dict[str, Any] = {
        "dataset_uri": args.dataset,
        "target": args.target,
        "estimator": args.estimator,
        "params": dict(args.param),
        "output_dir": args.output,
        "termination_message_path": args.termination_log,
    }
    optional = {
        "features": args.features,
        "categorical": args.categorical,
        "test_size": args.test_size,
        "seed": args.seed,
        "cv_folds": args.cv_folds,
        "scaling": args.scaling,
        "imputation": args.imputation,
        "categorical_imputation": args.categorical_imputation,
        "model_name": args.model_name,
        "store_uri": args.store,
    }
    values |= {key: value for key, value in optional.items() if value is not None}
    try:
        settings = TrainerSettings(**values)
    except ValidationError as error:
        print(f"error: {describe_invalid(error, _flag_of)}", file=sys.stderr)
        return 2
    return report(settings)


_FLAGS = {
    "dataset_uri": "dataset",
    "store_uri": "store",
    "termination_message_path": "termination-log",
}


def _flag_of(field: str) -> str:
    return "--" + _FLAGS.get(field, field).replace("_", "-")


def register(subparsers: Any) -> None:
    """Add `mlops train`."""
    parser = subparsers.add_parser(
        "train",
        help="Train, evaluate and export a model (the trainer pod's program, run locally).",
        description=(
            "Load a dataset, fit an allow-listed scikit-learn estimator, evaluate it on a"
            " held-out split, export it to ONNX with a parity check, and write model.onnx and"
            " model-card.json to --output. Prints the result as JSON; exits 1 with one sentence"
            " on stderr when the input is unusable."
        ),
    )
    parser.add_argument(
        "--dataset", required=True, metavar="URI", help="sklearn://iris, a CSV/Parquet path or URI."
    )
    parser.add_argument("--target", required=True, metavar="COLUMN", help="The column to predict.")
    parser.add_argument(
        "--estimator", required=True, metavar="NAME", help="e.g. RandomForestClassifier."
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        type=parse_param,
        metavar="KEY=VALUE",
        help="An estimator parameter (repeatable); VALUE is JSON or text: --param max_depth=3.",
    )
    parser.add_argument("--features", type=_columns, metavar="A,B,...", help="Feature columns.")
    parser.add_argument(
        "--categorical",
        type=_columns,
        metavar="A,B,...",
        help="Columns to one-hot encode (default: the non-numeric features).",
    )
    parser.add_argument("--test-size", type=float, help="Held-out fraction (default 0.2).")
    parser.add_argument("--seed", type=int, help="Seed of the split and the estimator (default 0).")
    parser.add_argument("--cv-folds", type=int, help="k-fold cross-validation (default 0: none).")
    parser.add_argument("--scaling", choices=("auto", "standard", "none"))
    parser.add_argument("--imputation", choices=("auto", "median", "mean", "most_frequent", "none"))
    parser.add_argument("--categorical-imputation", choices=("most_frequent", "constant"))
    parser.add_argument("--model-name", help="Name in the artifact store (default 'model').")
    parser.add_argument("--output", required=True, type=Path, metavar="DIR", help="Model folder.")
    parser.add_argument(
        "--store", metavar="URI", help="Artifact store root for the data snapshot and the model."
    )
    parser.add_argument(
        "--termination-log",
        type=Path,
        metavar="PATH",
        help="Also write the short result here (as the pod does to /dev/termination-log).",
    )
    parser.set_defaults(func=_train)
