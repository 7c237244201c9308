"""`mlops operator run` against the real API server.

Aspects: it answers its liveness probe and serves controller-runtime's metrics;
it observes each of the four kinds (observedGeneration, the top condition) and
follows a spec change; its bookkeeping is one short digest annotation, not status
and not a copy of the object (`kubectl get -o yaml` stays readable), and it posts
no Event for a valid object; it exits 0 soon after SIGTERM.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.operator.conftest import REPO, RunningOperator, http_get, start_operator
from tests.kube import get_json, kubectl, wait_for

EXAMPLES = REPO / "manifests" / "examples"
KINDS = {
    "trainingjob": ("trainingjobs.mlops.dev", "Succeeded"),
    "modelversion": ("modelversions.mlops.dev", "Ready"),
    "modeldeployment": ("modeldeployments.mlops.dev", "Ready"),
    "driftpolicy": ("driftpolicies.mlops.dev", "Ready"),
}


def _example(kind: str, namespace: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{kind}.yaml").read_text())
    doc["metadata"]["namespace"] = namespace
    return doc


def _observed(kubeconfig: Path, resource: str, name: str, namespace: str, condition: str) -> Any:
    """The object once its status describes its current generation, else None."""
    obj = get_json(kubeconfig, resource, name, "-n", namespace)
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    found = conditions.get(condition)
    if found is None or found.get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    return obj


def _reconciles(scrape: str, controller: str, result: str = "success") -> float:
    pattern = (
        rf'^controller_runtime_reconcile_total\{{controller="{controller}",'
        rf'result="{result}"\}} (\S+)$'
    )
    found = re.search(pattern, scrape, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_answers_liveness_and_serves_its_metrics(operator: RunningOperator) -> None:
    answer = http_get(operator.liveness_url)
    assert answer is not None
    assert answer[0] == 200
    scrape = operator.metrics()
    for controller in KINDS:
        assert (
            f'controller_runtime_reconcile_total{{controller="{controller}",result="success"}}'
            in scrape
        )
        assert (
            f'controller_runtime_reconcile_time_seconds_count{{controller="{controller}"}}'
            in scrape
        )
        assert f'controller_runtime_reconcile_errors_total{{controller="{controller}"}}' in scrape


def _apply(kubeconfig: Path, doc: dict[str, Any]) -> None:
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(doc))


@pytest.mark.parametrize("kind", list(KINDS))
def test_observes_each_kind(
    kind: str, operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    resource, condition = KINDS[kind]
    doc = _example(kind, namespace)
    name = doc["metadata"]["name"]
    _apply(kubeconfig, doc)

    def handled() -> Any:
        # Three writers finish in no fixed order: a timer may write the observed status
        # before Kopf patches its bookkeeping and counts the reconcile. Wait for all three.
        obj = _observed(kubeconfig, resource, name, namespace, condition)
        if obj is None or _reconciles(operator.metrics(), kind) < 1:
            return None
        annotations = obj["metadata"].get("annotations", {})
        return obj if "mlops.dev/last-handled-spec" in annotations else None

    obj = wait_for(handled, timeout=60, what=f"{kind} {name} observed and handled")
    # What each controller then does is its own tests' business; the skeleton's contract
    # is that a valid object is observed, never refused as invalid, and Kopf keeps its
    # bookkeeping out of the typed status, in one digest annotation, not a copy of the object.
    top = next(c for c in obj["status"]["conditions"] if c["type"] == condition)
    assert top["reason"] != "InvalidSpec", top
    assert "kopf" not in obj["status"]
    kopf = {k: v for k, v in obj["metadata"]["annotations"].items() if k.startswith("mlops.dev/")}
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", kopf.pop("mlops.dev/last-handled-spec"))
    # Left besides the digest: Kopf's marker, never the JSON copy of the object.
    assert set(kopf) <= {"mlops.dev/kopf-managed"}, kopf

    events = get_json(kubeconfig, "events", "-n", namespace)["items"]
    refusals = [e for e in events if e.get("reason") == "InvalidSpec"]
    assert refusals == [], "a valid object must not be refused"


# A field each kind lets change after creation (ModelVersion's spec is immutable).
SPEC_CHANGES = {
    "trainingjob": {"ttlSecondsAfterFinished": 3600},
    "modeldeployment": {"replicas": 2},
    "driftpolicy": {"suspend": True},
}


@pytest.mark.parametrize("kind", list(SPEC_CHANGES))
def test_follows_spec_changes(
    kind: str, operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    resource, condition = KINDS[kind]
    doc = _example(kind, namespace)
    name = doc["metadata"]["name"]
    _apply(kubeconfig, doc)
    first = wait_for(
        lambda: _observed(kubeconfig, resource, name, namespace, condition),
        timeout=60,
        what=f"{kind} {name} observed",
    )

    doc["spec"] |= SPEC_CHANGES[kind]
    _apply(kubeconfig, doc)
    changed = wait_for(
        lambda: _observed(kubeconfig, resource, name, namespace, condition),
        timeout=60,
        what=f"{kind} {name} observed after a spec change",
    )
    assert changed["metadata"]["generation"] > first["metadata"]["generation"]
    assert all(changed["spec"][key] == value for key, value in SPEC_CHANGES[kind].items())


# Kopf logs this just before it discovers the API; a stop then cuts the discovery's requests,
# which made half the exits fail (status 1, aiohttp's AssertionError) before the operator took
# the signals over from Kopf (`runtime.main._Stop`). Several rounds: each is a fresh chance.
KOPF_STARTING = "Initial authentication has finished."
MOMENTS = {"ready": (None, 1), "kopf-starting": (KOPF_STARTING, 3)}


@pytest.mark.parametrize("moment", MOMENTS)
def test_exits_cleanly_on_sigterm(
    kubeconfig: Path, crds: list[Path], namespace: str, tmp_path: Path, moment: str
) -> None:
    logged, rounds = MOMENTS[moment]
    for round_ in range(rounds):
        log_file = tmp_path / f"operator-{round_}.log"
        running = start_operator(kubeconfig, namespace, log_file, logged=logged)
        assert running.stop(timeout=30) == 0, log_file.read_text()
        log = log_file.read_text()
        assert "Traceback" not in log, log
        records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        assert records, f"no JSON log records: {log}"
        assert records[-1]["message"] == "operator stopped", records[-1]


def test_kopfs_json_copy_is_replaced_by_the_digest(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    # An object last handled by an operator that kept Kopf's JSON copy of it: the copy
    # goes, the digest comes, without the spec being handled as changed.
    doc = _example("modeldeployment", namespace)
    name = doc["metadata"]["name"]
    copy = json.dumps({"spec": doc["spec"]}, separators=(",", ":"))
    doc["metadata"]["annotations"] = {"mlops.dev/last-handled-configuration": copy}
    _apply(kubeconfig, doc)

    def migrated() -> Any:
        obj = get_json(kubeconfig, "modeldeployments.mlops.dev", name, "-n", namespace)
        annotations = obj["metadata"].get("annotations", {})
        if "mlops.dev/last-handled-configuration" in annotations:
            return None
        return annotations if "mlops.dev/last-handled-spec" in annotations else None

    annotations = wait_for(migrated, timeout=60, what=f"{name}'s JSON copy replaced")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", annotations["mlops.dev/last-handled-spec"])
