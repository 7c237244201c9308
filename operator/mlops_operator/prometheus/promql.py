"""PromQL over the inference server's metrics (``docs/serving.md``), for any window.

Two kinds of expression. The *count* queries (`feature_bins`, `prediction_bins`,
the reference gauges) fetch a window's raw counts, from which `decisions.triggers`
computes every statistic in Python, exactly as for the direct scrape. The *statistic*
queries (`feature_psi`, `prediction_psi`) compute the same numbers inside
Prometheus, for dashboards, alerts and ``kubectl``-free debugging; a test checks
that both agree on a real Prometheus. Realized and estimated performance come from
the evaluator's gauges (`realized`, named in `mlops_operator.realized`): they are
already judged per window by prediction time, so they are read as they stand.

Every expression is scoped by `Scope` (the namespace, the model and optionally
one served version), so two deployments of one model name never mix, and keeps
``model_version`` in its result: during a canary the champion and the challenger
serve side by side, each with its own reference, and are judged apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_operator.distributions import PSI_EPSILON
from mlops_operator.realized import VERSION_GAUGES

__all__ = [
    "Scope",
    "custom",
    "estimated_accuracy",
    "feature_bins",
    "feature_psi",
    "feature_reference",
    "prediction_bins",
    "prediction_psi",
    "prediction_reference",
    "realized",
    "realized_accuracy",
]

_EPSILON = repr(PSI_EPSILON)


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@dataclass(frozen=True)
class Scope:
    """Which series belong to the watched model: label matchers shared by every query."""

    model: str
    namespace: str | None = None
    model_version: str | None = None
    namespace_label: str = "namespace"

    def matchers(self, *extra: str) -> str:
        """``{label="value",…}`` for this scope plus `extra` matchers."""
        parts = [f"model={_quote(self.model)}"]
        if self.namespace is not None:
            parts.append(f"{self.namespace_label}={_quote(self.namespace)}")
        if self.model_version is not None:
            parts.append(f"model_version={_quote(self.model_version)}")
        return "{" + ",".join([*parts, *extra]) + "}"


def _feature_matchers(features: list[str] | None) -> tuple[str, ...]:
    if not features:
        return ()
    alternatives = "|".join(_regex_literal(f) for f in sorted(features))
    return (f"feature=~{_quote(alternatives)}",)


def _regex_literal(text: str) -> str:
    return "".join(f"\\{c}" if c in r".^$*+?()[]{}|\\" else c for c in text)


def _counts(metric: str, scope: Scope, window: str, group: str, extra: tuple[str, ...]) -> str:
    return f"sum by ({group}) (increase({metric}{scope.matchers(*extra)}[{window}]))"


def _shares(metric: str, scope: Scope, window: str, group: str, extra: tuple[str, ...]) -> str:
    # max_over_time: the reference of a pod that served during the window but has gone since;
    # max by: the identical gauges of several pods collapse into one.
    return f"max by ({group}) (max_over_time({metric}{scope.matchers(*extra)}[{window}]))"


def feature_bins(scope: Scope, window: str, features: list[str] | None = None) -> str:
    """Values per feature and bin that arrived during `window`."""
    extra = _feature_matchers(features)
    return _counts("mlops_feature_bin_total", scope, window, "model_version, feature, bin", extra)


def feature_reference(scope: Scope, window: str, features: list[str] | None = None) -> str:
    """Each feature bin's training share, from any pod that served during `window`."""
    extra = _feature_matchers(features)
    group = "model_version, feature, bin"
    return _shares("mlops_feature_reference_proportion", scope, window, group, extra)


def prediction_bins(scope: Scope, window: str) -> str:
    """Predictions per class (or regression bin) made during `window`."""
    return _counts("mlops_prediction_bin_total", scope, window, "model_version, bin", ())


def prediction_reference(scope: Scope, window: str) -> str:
    """Each prediction bin's training share."""
    return _shares("mlops_prediction_reference_proportion", scope, window, "model_version, bin", ())


def realized(scope: Scope) -> str:
    """The evaluator's latest gauges (every name of `realized.VERSION_GAUGES`) per version."""
    names = "|".join(sorted(VERSION_GAUGES.values()))
    selector = scope.matchers(f"__name__=~{_quote(names)}")
    return f"max by (__name__, model_version) ({selector})"


def _psi(counts: str, reference: str, by: str) -> str:
    # Σ (a − e)·ln(a / e) per group, both shares floored at PSI_EPSILON as distributions.psi does.
    share = f"clamp_min({counts} / ignoring(bin) group_left sum by ({by}) ({counts}), {_EPSILON})"
    expected = f"clamp_min({reference}, {_EPSILON})"
    on = f"on({by}, bin)"
    return f"sum by ({by}) (({share} - {on} {expected}) * {on} ln({share} / {on} {expected}))"


def feature_psi(scope: Scope, window: str, features: list[str] | None = None) -> str:
    """PSI of each feature over `window`, computed by Prometheus."""
    return _psi(
        feature_bins(scope, window, features),
        feature_reference(scope, window, features),
        "model_version, feature",
    )


def prediction_psi(scope: Scope, window: str) -> str:
    """PSI of the predictions over `window`, computed by Prometheus."""
    by = "model_version"
    return _psi(prediction_bins(scope, window), prediction_reference(scope, window), by)


def realized_accuracy(scope: Scope) -> str:
    """Realized accuracy of each version's judged window, as the evaluator exports it."""
    return f"max by (model_version) ({VERSION_GAUGES['realized_accuracy']}{scope.matchers()})"


def estimated_accuracy(scope: Scope) -> str:
    """Estimated accuracy (CBPE) of each version's newest window, before labels."""
    return f"max by (model_version) ({VERSION_GAUGES['estimated_accuracy']}{scope.matchers()})"


def custom(query: str, window: str) -> str:
    """A user's query with ``$window`` replaced by the policy's window."""
    return query.replace("$window", window)
