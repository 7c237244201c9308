"""The validation pod's entry point: ``python -m mlops_operator.validator``.

Exit 0 when a report was written, whatever it says (a rejected model is a
result, not a failure of the Job); 1 when the settings are wrong, 70 on a bug.
Both failures still leave a report with one failed check.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from mlops_operator.podcontract import ENV_PREFIX, TERMINATION_MESSAGE_PATH
from mlops_operator.validator.report import Check, ValidationReport

__all__ = ["main"]

_log = logging.getLogger(__name__)


def _write(path: Path, report: ValidationReport) -> None:
    text = report.render()
    print(text)
    try:
        path.write_text(text)
    except OSError as error:
        print(f"could not write the termination message to {path}: {error}", file=sys.stderr)


def main() -> int:
    """Read the settings, validate, write the report; return the exit code."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    fallback = Path(
        os.environ.get(f"{ENV_PREFIX}TERMINATION_MESSAGE_PATH", TERMINATION_MESSAGE_PATH)
    )
    from mlops_operator.validator.settings import ValidatorSettings

    try:
        settings = ValidatorSettings()  # type: ignore[call-arg]  # the environment supplies them
    except ValidationError as error:
        message = f"invalid validator settings: {error}"
        _write(
            fallback,
            ValidationReport(checks=[Check(name="settings", passed=False, message=message)]),
        )
        return 1
    from mlops_operator.validator.run import validate

    try:
        report = validate(settings)
    except Exception as error:  # noqa: BLE001  # a bug must still end with a report
        _log.exception("validation failed unexpectedly")
        report = ValidationReport(
            checks=[Check(name="internal", passed=False, message=f"internal error: {error!r}")]
        )
        _write(settings.termination_message_path, report)
        return 70
    _write(settings.termination_message_path, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
