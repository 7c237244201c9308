"""``mlops serve``: the inference server on a model directory, with or without a cluster."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["register"]

# Flags that map one-to-one onto ServingSettings fields (env MLOPS_<FIELD>).
_OPTIONS: tuple[tuple[str, type, str], ...] = (
    ("model-name", str, "name served under /v2/models/{name} (default: the card's)"),
    ("model-version", str, "version on every response and metric (default: sha256 prefix)"),
    ("host", str, "address to listen on (default 0.0.0.0)"),
    ("port", int, "port to listen on (default 8080)"),
    ("grpc-port", int, "also serve the Open Inference Protocol over gRPC on this port"),
    ("workers", int, "worker processes sharing the port (default: one per whole CPU)"),
    ("intra-op-threads", int, "onnxruntime threads per worker (default: CPU limit / workers)"),
    ("cpu-limit", float, "CPUs available (default: the cgroup limit)"),
    ("max-batch-rows", int, "most rows merged into one onnxruntime call"),
    ("batch-delay-ms", float, "how long a micro-batch waits for more requests (default 0)"),
    ("max-body-bytes", int, "largest request body"),
    ("max-rows", int, "most rows in one request"),
    ("shadow-url", str, "mirror each request to this base URL, fire-and-forget"),
    ("shadow-percent", int, "percent of the requests mirrored (default 100)"),
    ("canary-url", str, "forward canary-percent of the requests to this base URL"),
    ("canary-percent", int, "percent of the requests the canary answers (default 0)"),
    ("timeout-ms", int, "deadline of a request in milliseconds, HTTP 504 past it (default: none)"),
    ("payload-log-uri", str, "write sampled payloads as JSON lines under this URI"),
    ("payload-log-sample-rate", float, "share of requests logged (0..1)"),
    ("labels-uri", str, "record every prediction (and /feedback labels) as Parquet under this URI"),
    ("label-retention-seconds", float, "how long after a prediction labels are accepted"),
    ("drain-seconds", float, "after SIGTERM, serve this long while not ready"),
    ("log-level", str, "logging level (default INFO)"),
)


def register(subparsers: Any) -> None:
    """Add ``mlops serve`` to the ``mlops`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="serve an ONNX model directory over HTTP (KServe V2, /predict, /metrics)",
        description=(
            "Serve the model that `mlops train --output DIR` wrote. Every flag also reads "
            "from its MLOPS_* environment variable (e.g. MLOPS_PORT)."
        ),
    )
    parser.add_argument(
        "--model-dir",
        default=None,
        help="directory or fsspec URI with model.onnx and its card (or MLOPS_MODEL_DIR)",
    )
    for flag, kind, text in _OPTIONS:
        parser.add_argument(f"--{flag}", type=kind, default=None, help=text)
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    # Imported here so `mlops` stays fast for commands that never serve.
    from mlops_operator.serving.server import run
    from mlops_operator.serving.settings import ServingSettings

    if args.model_dir is None and not os.environ.get("MLOPS_MODEL_DIR"):
        # The operator's pods configure the server through the environment only.
        print("mlops serve: error: --model-dir (or MLOPS_MODEL_DIR) is required", file=sys.stderr)
        return 2
    given = {
        name: value
        for name, value in vars(args).items()
        if value is not None and name in ServingSettings.model_fields
    }
    return run(ServingSettings(**given))
