"""Overhead of the trainer over bare scikit-learn on the same data and estimator.

    python benchmarks/trainer/bench_trainer.py            # the default cases, 3 repeats each
    python benchmarks/trainer/bench_trainer.py --rows 50000 --repeats 1

Bare scikit-learn: read the CSV, split it, fit the estimator, predict the
held-out rows. The trainer (``train()``, as ``mlops train`` runs it, with an
artifact store): the same, plus canonicalizing and hashing the data, the
preprocessing steps inside the model, metrics, reference distributions, the
data snapshot, the model card and verified writes. ONNX export and the parity
check are reported apart: the target is overhead <= 15 % plus the export.
Timings are the fastest of the repeats (bare and trainer runs alternate), the
least disturbed estimate on a shared machine. Prints one line per case; record them
with the date and machine in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import train_test_split

from mlops_operator.trainer.estimators import resolve_estimator
from mlops_operator.trainer.run import train
from mlops_operator.trainer.settings import TrainerSettings


@dataclass(frozen=True)
class Case:
    """One estimator on one synthetic table."""

    estimator: str
    params: dict[str, Any]
    rows: int
    features: int = 20


CASES = (
    Case("RandomForestClassifier", {"n_estimators": 50, "n_jobs": 1}, rows=50_000),
    Case("GradientBoostingRegressor", {"n_estimators": 100}, rows=50_000),
    Case("LogisticRegression", {"max_iter": 500}, rows=200_000),
)


def _write_data(case: Case, folder: Path) -> Path:
    if resolve_estimator(case.estimator).task == "classification":
        x, y = make_classification(case.rows, case.features, n_informative=10, random_state=0)
    else:
        x, y = make_regression(
            case.rows, case.features, n_informative=10, noise=5.0, random_state=0
        )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(case.features)])
    frame["target"] = y
    path = folder / f"{case.estimator}-{case.rows}.csv"
    frame.to_csv(path, index=False)
    return path


def _bare(case: Case, path: Path) -> float:
    spec = resolve_estimator(case.estimator)
    started = time.perf_counter()
    frame = pd.read_csv(path)
    x, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    stratify = y if spec.task == "classification" else None
    x_train, x_test, y_train, _ = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=stratify
    )
    estimator = spec.factory(
        **case.params,
        **({"random_state": 0} if "random_state" in spec.factory().get_params() else {}),
    )
    estimator.fit(x_train, y_train)
    estimator.predict(x_test)
    return time.perf_counter() - started


def _trainer(case: Case, path: Path, folder: Path) -> tuple[float, float]:
    settings = TrainerSettings(
        dataset_uri=str(path),
        target="target",
        estimator=case.estimator,
        params=case.params,
        output_dir=folder / "model",
        store_uri=str(folder / "store"),
        termination_message_path=None,
    )
    started = time.perf_counter()
    outcome = train(settings)
    total = time.perf_counter() - started
    return total - outcome.seconds["export"], outcome.seconds["export"]


def main() -> None:
    """Run every case and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, help="Override the row count of every case.")
    args = parser.parse_args()
    print(
        f"# {time.strftime('%Y-%m-%d')} {platform.node()} {os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    )
    print(
        f"# python {platform.python_version()}, scikit-learn {sklearn.__version__}, numpy {np.__version__}"
    )
    print(f"{'case':<44} {'bare s':>8} {'trainer s':>10} {'overhead':>9} {'export+parity s':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for case in CASES:
            if args.rows:
                case = Case(case.estimator, case.params, args.rows, case.features)
            path = _write_data(case, folder)
            bare, trained, exported = [], [], []
            for repeat in range(args.repeats):
                bare.append(_bare(case, path))
                without_export, export = _trainer(case, path, folder / f"run{repeat}")
                trained.append(without_export)
                exported.append(export)
            b, t, e = min(bare), min(trained), min(exported)
            label = f"{case.estimator} {case.rows}x{case.features}"
            print(f"{label:<44} {b:>8.2f} {t:>10.2f} {100 * (t - b) / b:>8.1f}% {e:>16.2f}")


if __name__ == "__main__":
    main()
