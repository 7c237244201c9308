"""The validation Job's report: the contract between the validator pod and the operator.

Kept free of heavy imports (no onnxruntime, no pandas) so the operator can
parse it. It travels as the pod's termination message, which Kubernetes caps at
4096 bytes: metrics only, never samples.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MAX_REPORT_BYTES", "Check", "CheckName", "ValidationReport"]

MAX_REPORT_BYTES = 3500
"""Below Kubernetes' 4096-byte termination message limit."""


class CheckName:
    """The checks the validator runs, in order; each becomes a gate result of the same name."""

    CHECKSUM = "checksum"
    ARTIFACT = "artifact"
    LOAD = "load"
    SIGNATURE = "signature"
    PARITY = "parity"
    EVALUATION = "evaluation"

    ALL = frozenset({CHECKSUM, ARTIFACT, LOAD, SIGNATURE, PARITY, EVALUATION})
    """Every check: a failed one is a fault of the artifact, not of a metric gate."""


class Check(BaseModel):
    """One check of the artifact."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    passed: bool
    message: str = ""


class ValidationReport(BaseModel):
    """Every check run on the candidate, and its metrics and the champions' on the same rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checks: list[Check]
    rows: int = Field(default=0, description="Held-out rows both models were evaluated on.")
    candidate_metrics: dict[str, float] = Field(default_factory=dict)
    champion_metrics: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per champion ModelVersion name, its metrics."
    )

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(check.passed for check in self.checks)

    def render(self) -> str:
        """Compact JSON within `MAX_REPORT_BYTES` (long messages are shortened)."""
        text = self.model_dump_json()
        if len(text.encode()) <= MAX_REPORT_BYTES:
            return text
        short = [c.model_copy(update={"message": c.message[:200]}) for c in self.checks]
        return self.model_copy(update={"checks": short}).model_dump_json()
