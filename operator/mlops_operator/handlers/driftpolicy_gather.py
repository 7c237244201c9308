"""Everything one evaluation of a DriftPolicy needs, read from the cluster and the metrics.

The I/O half of the DriftPolicy controller (`handlers.driftpolicy`; the decision is
`decisions.drift.evaluate`):

- the target ModelDeployment (its model name; its champion, to judge that version),
- the TrainingJobs the policy created (cooldown, budget, "one at a time", last retrain),
- the readings of every data trigger over the window, from Prometheus when a URL is
  configured (the policy's ``prometheus.url``, else the operator's ``MLOPS_PROMETHEUS_URL``),
  else from the serving pods' ``/metrics`` scraped directly and differenced over time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from mlops_operator.api.driftpolicy import DriftPolicy
from mlops_operator.api.durations import parse_duration, promql_duration
from mlops_operator.api.metadata import (
    DRIFT_POLICY_LABEL,
    RETRAIN_REASON_ANNOTATION,
    SCRAPE_PATH_ANNOTATION,
    SCRAPE_PORT_ANNOTATION,
)
from mlops_operator.api.resource import API_VERSION
from mlops_operator.decisions.drift import Retrain
from mlops_operator.decisions.outbound import scrape_url
from mlops_operator.decisions.triggers import Reading, WindowCounts, choose_version, measure
from mlops_operator.k8s import KubeClient, NotFound
from mlops_operator.prometheus import PrometheusClient, promql
from mlops_operator.prometheus.history import PodTarget, ScrapeHistory, scrape_pods
from mlops_operator.prometheus.live import evaluation_window
from mlops_operator.prometheus.windows import SourceError, WindowQueries
from mlops_operator.resources.common import DEPLOYMENT_LABEL, label_value

__all__ = ["NO_PROMETHEUS", "Gathered", "Gatherer", "TargetMissing", "parse_time", "unrunnable"]

NO_PROMETHEUS = (
    "custom PromQL triggers need a Prometheus: set spec.prometheus.url, or the operator's"
    " Prometheus (MLOPS_PROMETHEUS_URL, the chart's operator.prometheusUrl)"
)

_FINISHED = {"Succeeded", "Failed"}


class TargetMissing(Exception):
    """The ModelDeployment the policy watches does not exist."""


def parse_time(text: str) -> datetime:
    """A Kubernetes timestamp (``2026-01-01T00:00:00Z``) as an aware datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass
class Gathered:
    """What one evaluation found."""

    readings: list[Reading] | None
    retrains: list[Retrain]
    source_error: str | None = None
    note: str = ""
    version: str | None = None
    counts: WindowCounts | None = None
    refused_targets: list[str] = field(default_factory=list)
    """Serving pods not scraped because their address or annotations make no valid URL,
    reported for the first time this evaluation."""


@dataclass
class Gatherer:
    """Gathers for one policy; keeps the scrape history the direct fallback needs."""

    kube: KubeClient
    default_prometheus_url: str | None = None
    max_seconds: float = 30.0
    """No query or scrape takes longer, whatever the policy asks."""
    max_bytes: int = 16 * 1024 * 1024
    """No answer is read beyond this many bytes."""
    history: ScrapeHistory = field(default_factory=ScrapeHistory)
    _session: aiohttp.ClientSession | None = None
    _clients: dict[str, PrometheusClient] = field(default_factory=dict)
    _refused: set[str] = field(default_factory=set)

    async def close(self) -> None:
        """Close the HTTP sessions."""
        if self._session is not None:
            await self._session.close()
        for client in self._clients.values():
            await client.close()

    async def target(self, policy: DriftPolicy) -> dict[str, Any]:
        """The watched ModelDeployment; `TargetMissing` when it does not exist."""
        try:
            return await self.kube.get(
                API_VERSION, "ModelDeployment", policy.spec.deployment, policy.namespace
            )
        except NotFound as error:
            raise TargetMissing(
                f"ModelDeployment {policy.spec.deployment} does not exist in namespace"
                f" {policy.namespace}; create it or fix spec.deployment"
            ) from error

    async def retrains(self, policy: DriftPolicy) -> list[Retrain]:
        """The TrainingJobs this policy created, oldest first."""
        jobs = await self.kube.list(
            API_VERSION,
            "TrainingJob",
            policy.namespace,
            labels={DRIFT_POLICY_LABEL: label_value(policy.name)},
        )
        found = []
        for job in jobs:
            status = job.get("status") or {}
            meta = job["metadata"]
            found.append(
                Retrain(
                    name=meta["name"],
                    created=parse_time(meta["creationTimestamp"]),
                    finished=status.get("phase") in _FINISHED,
                    model_version=status.get("modelVersion"),
                    reason=(meta.get("annotations") or {}).get(RETRAIN_REASON_ANNOTATION, ""),
                )
            )
        return sorted(found, key=lambda r: r.created)

    async def readings(
        self, policy: DriftPolicy, target: dict[str, Any], now: datetime
    ) -> Gathered:
        """The readings of every data trigger over the window (None and why, when unknown)."""
        spec = policy.spec
        scope = promql.Scope(model=target["spec"]["modelName"], namespace=policy.namespace)
        age = (now - parse_time(target["metadata"]["creationTimestamp"])).total_seconds()
        window_seconds = evaluation_window(parse_duration(spec.window), age)
        url = spec.prometheus.url or self.default_prometheus_url
        features = spec.triggers.feature_drift.features if spec.triggers.feature_drift else None
        note = ""
        refused: list[str] = []
        try:
            if url:
                source = WindowQueries(self._client(url, self._timeout(policy)))
                window = promql_duration(window_seconds)
                counted = await source.window_counts(scope, window, features)
                custom = [await source.custom(t, window) for t in spec.triggers.custom or []]
            else:
                counted, note = await self._scraped(policy, scope, now, window_seconds, refused)
                custom = [
                    Reading(f"custom/{t.name}", None, t.threshold, t.op, message=NO_PROMETHEUS)
                    for t in spec.triggers.custom or []
                ]
        except SourceError as error:
            return Gathered(None, [], source_error=str(error), refused_targets=refused)
        chosen = choose_version(counted, _champion_names(target))
        if chosen is None:
            return Gathered(
                None,
                [],
                source_error=f"no served version of {scope.matchers()}",
                refused_targets=refused,
            )
        version, counts = chosen
        readings = [*measure(spec.triggers, counts), *custom]
        if refused:
            note = "; ".join(filter(None, [note, f"{len(refused)} pod(s) not scraped"]))
        return Gathered(
            readings, [], note=note, version=version, counts=counts, refused_targets=refused
        )

    def _timeout(self, policy: DriftPolicy) -> float:
        return min(float(policy.spec.prometheus.timeout_seconds), self.max_seconds)

    def _client(self, url: str, timeout: float) -> PrometheusClient:
        key = f"{url} {timeout}"
        if key not in self._clients:
            self._clients[key] = PrometheusClient(url, timeout=timeout, max_bytes=self.max_bytes)
        return self._clients[key]

    async def _scraped(
        self,
        policy: DriftPolicy,
        scope: promql.Scope,
        now: datetime,
        window: float,
        refused: list[str],
    ) -> tuple[dict[str, WindowCounts], str]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        targets = await self._pods(policy, refused)
        snapshots = await scrape_pods(
            self._session,
            targets,
            timeout_seconds=self._timeout(policy),
            max_bytes=self.max_bytes,
            now=now,
        )
        for target, snapshot in snapshots:
            self.history.record(target, snapshot)
        span = timedelta(seconds=window)
        self.history.forget([t.uid for t in targets], now, span)
        return self.history.window_counts(scope, now, span)

    async def _pods(self, policy: DriftPolicy, refused: list[str]) -> Sequence[PodTarget]:
        """The serving pods to scrape; a pod whose address or annotations make no valid URL
        is skipped, and named in `refused` the first time (anyone who may create pods can
        label one like a serving pod: its annotations are input, not configuration)."""
        pods = await self.kube.list(
            "v1",
            "Pod",
            policy.namespace,
            labels={DEPLOYMENT_LABEL: label_value(policy.spec.deployment)},
        )
        targets = []
        for pod in pods:
            annotations = pod["metadata"].get("annotations") or {}
            status = pod.get("status") or {}
            port = annotations.get(SCRAPE_PORT_ANNOTATION)
            if status.get("phase") != "Running" or not status.get("podIP") or not port:
                continue
            target = scrape_url(
                status["podIP"], port, annotations.get(SCRAPE_PATH_ANNOTATION, "/metrics")
            )
            if target.url is None:
                why = f"pod {pod['metadata']['name']} not scraped: {target.refusal}"
                if why not in self._refused:
                    self._refused.add(why)
                    refused.append(why)
                continue
            started = status.get("startTime")
            targets.append(
                PodTarget(
                    uid=pod["metadata"]["uid"],
                    url=target.url,
                    started=parse_time(started) if started else None,
                )
            )
        return targets


def unrunnable(policy: DriftPolicy, default_prometheus_url: str | None) -> str | None:
    """Why some of `policy`'s triggers cannot be measured at all here, or None."""
    if policy.spec.triggers.custom and not (policy.spec.prometheus.url or default_prometheus_url):
        names = ", ".join(t.name for t in policy.spec.triggers.custom)
        return f"{NO_PROMETHEUS} (triggers {names} are never evaluated)"
    return None


def _champion_names(target: dict[str, Any]) -> list[str]:
    # The server's `model_version` label is set by the ModelDeployment controller; accept
    # the usual spellings of the champion so the policy judges the version serving.
    champion = (target.get("status") or {}).get("champion") or {}
    names = [champion.get("modelVersion")]
    if champion.get("version") is not None:
        names += [str(champion["version"]), f"v{champion['version']}"]
    return [n for n in names if n]
