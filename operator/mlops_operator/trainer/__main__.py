"""The training pod's entry point: settings from ``MLOPS_*`` variables, result as termination message."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from mlops_operator.podcontract import ENV_PREFIX
from mlops_operator.trainer.errors import Reason
from mlops_operator.trainer.result import TrainingFailed, render_termination_message
from mlops_operator.trainer.settings import TrainerSettings, describe_invalid

__all__ = ["main"]

_TERMINATION_ENV = f"{ENV_PREFIX}TERMINATION_MESSAGE_PATH"


def main() -> int:
    """Read the settings from the environment, train, report; return the exit code."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        settings = TrainerSettings()  # type: ignore[call-arg]  # the environment supplies them
    except ValidationError as error:
        message = describe_invalid(error, lambda field: f"{ENV_PREFIX}{field.upper()}")
        print(f"error: {message}", file=sys.stderr)
        path = Path(os.environ.get(_TERMINATION_ENV, "/dev/termination-log"))
        failed = TrainingFailed(reason=Reason.INVALID_SETTINGS, message=message)
        try:
            path.write_text(render_termination_message(failed))
        except OSError as write_error:
            print(f"could not write {path}: {write_error}", file=sys.stderr)
        return 1
    from mlops_operator.trainer.run import report

    return report(settings)


if __name__ == "__main__":
    sys.exit(main())
