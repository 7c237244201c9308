"""The evaluator's metrics: one catalogue for the evaluator that exports them and every reader.

Realized performance (from labels joined with predictions) and estimated
performance (CBPE, before labels) are exported by the evaluator pod of each
ModelDeployment with labels (``mlops_operator.evaluator``). The DriftPolicy, the
canary analysis, the rollback floors and PromQL dashboards all read these gauges,
so every consumer sees one number. Every series has the labels ``model`` and
``model_version`` (the evaluator's pod adds ``namespace`` through Prometheus'
discovery).
"""

from __future__ import annotations

__all__ = ["EVALUATOR_COMPONENT", "GAUGES", "VERSION_GAUGES"]

EVALUATOR_COMPONENT = "evaluator"
"""``app.kubernetes.io/component`` of the evaluator's pods."""

VERSION_GAUGES: dict[str, str] = {
    "realized_accuracy": "mlops_realized_accuracy",
    "realized_f1_macro": "mlops_realized_f1_macro",
    "realized_rmse": "mlops_realized_rmse",
    "realized_mae": "mlops_realized_mae",
    "realized_labelled_rows": "mlops_realized_labelled_rows",
    "realized_predictions": "mlops_realized_predictions",
    "realized_coverage": "mlops_realized_coverage",
    "realized_window_start": "mlops_realized_window_start_seconds",
    "estimated_accuracy": "mlops_estimated_accuracy",
    "estimated_predictions": "mlops_estimated_predictions",
    "estimated_window_start": "mlops_estimated_window_start_seconds",
    "cbpe_absolute_error": "mlops_cbpe_absolute_error",
    "label_coverage": "mlops_label_coverage",
    "expired_windows": "mlops_label_windows_expired",
    "lifetime_predictions": "mlops_lifetime_predictions",
    "lifetime_labelled_rows": "mlops_lifetime_labelled_rows",
    "lifetime_accuracy": "mlops_lifetime_accuracy",
    "lifetime_rmse": "mlops_lifetime_rmse",
    "duplicate_label_rows": "mlops_label_duplicate_rows",
}
"""Per version, by the field of `Realized` (operator side) each fills. ``realized_*`` are
of the judged window (the newest whose label coverage reached ``minLabelCoverage``),
``estimated_*`` and ``label_coverage`` of the newest window, ``lifetime_*`` of every
prediction within the retention."""

GAUGES: dict[str, str] = {
    "unmatched_labels": "mlops_labels_unmatched",
    "last_join": "mlops_evaluation_timestamp_seconds",
    "join_seconds": "mlops_evaluation_duration_seconds",
}
"""Per model (no version)."""
