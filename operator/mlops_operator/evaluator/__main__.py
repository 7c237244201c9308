"""The evaluator pod's entry point: settings from ``MLOPS_*`` variables."""

from __future__ import annotations

import sys

from mlops_operator.evaluator.run import run
from mlops_operator.evaluator.settings import EvaluatorSettings

if __name__ == "__main__":
    sys.exit(run(EvaluatorSettings()))  # type: ignore[call-arg]  # the environment supplies them
