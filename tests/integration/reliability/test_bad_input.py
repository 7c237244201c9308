"""Bad TrainingJobs at scale: generated specs against the real API server and the operator.

Hypothesis mutates the iris example (always ``suspend: true``, so no pod runs):
fields get values of the wrong type, out of range, hostile strings (paths,
import names, URIs), or unknown fields are added. Each document is created
with strict field validation. Every one must either be refused by the API
server with a message naming a ``spec`` field, or be accepted and then get,
from the operator, a ``Succeeded`` condition with a reason (``Suspended`` when
it is fine, ``InvalidSpec`` when the controller refuses it) — never silence,
which is what an endless retry looks like. The operator must still be running
at the end, without having restarted.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.operator.conftest import RunningOperator
from tests.integration.trainingjob.conftest import items, training_job
from tests.kube import kubectl, wait_for

pytestmark = pytest.mark.reliability

EXAMPLES = 200

HOSTILE = st.sampled_from(
    [
        "../../etc/passwd",
        "/etc/passwd",
        "file:///etc/passwd",
        "os.system",
        "__import__('os')",
        "sklearn.linear_model.LogisticRegression",
        "subprocess.Popen",
        "hostPath",
        "default",
        "kube-system",
        "sklearn://iris",
        "sklearn://../../x",
        "LogisticRegression",
        "RandomForestRegressor",
        "median",
        "most_frequent",
        "x" * 300,
        "",
        " ",
        "ünïcødé",
        "1e999",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    HOSTILE,
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=8), SCALARS, max_size=3),
)
FIELDS = st.sampled_from(
    [
        "modelName",
        "target",
        "features",
        "categoricalFeatures",
        "task",
        "estimator.name",
        "estimator.params",
        "seed",
        "testSize",
        "cvFolds",
        "preprocessing.scaleNumeric",
        "preprocessing.impute.numeric",
        "backoffLimit",
        "activeDeadlineSeconds",
        "ttlSecondsAfterFinished",
        "image",
        "resources",
        "gates",
        "targetDeployment",
        "dataset.uri",
        "dataset.pvc",
        "dataset.format",
        "dataset.credentialsSecret",
        # Fields a TrainingJob does not have: each must be refused, never reach a pod.
        "serviceAccountName",
        "volumes",
        "hostPath",
        "command",
        "securityContext",
    ]
)
EDITS = st.dictionaries(FIELDS, VALUES, min_size=1, max_size=3)


def _edited(base: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(base)
    for path, value in edits.items():
        node = document["spec"]
        *parents, last = path.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[last] = value
    document["spec"]["suspend"] = True
    return document


def _reasoned(kubeconfig: Path, namespace: str) -> dict[str, str]:
    """TrainingJob name -> the reason of its Succeeded condition, for those that have one."""
    found = {}
    for obj in items(kubeconfig, namespace, "trainingjobs"):
        for condition in (obj.get("status") or {}).get("conditions") or []:
            if condition["type"] == "Succeeded" and condition.get("reason"):
                found[obj["metadata"]["name"]] = condition["reason"]
    return found


def test_generated_training_jobs_are_refused_by_name_or_handled_with_a_reason(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    base = training_job(namespace, "placeholder", suspend=True)
    accepted: list[str] = []
    refused: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(edits=EDITS)
    def submit(edits: dict[str, Any]) -> None:
        name = f"gen-{len(accepted) + len(refused)}"
        document = _edited(base, edits)
        document["metadata"]["name"] = name
        proc = kubectl(
            kubeconfig,
            "create",
            "--validate=strict",
            "-f",
            "-",
            stdin=yaml.safe_dump(document),
            check=False,
        )
        if proc.returncode == 0:
            accepted.append(name)
            return
        error = proc.stderr
        refused.append(name)
        assert "spec." in error or "unknown field" in error, (edits, error)

    submit()

    assert operator.process.poll() is None, "the operator exited"
    reasons = wait_for(
        lambda: found if set(found := _reasoned(kubeconfig, namespace)) >= set(accepted) else None,
        timeout=180,
        what=f"a reasoned Succeeded condition on each of {len(accepted)} accepted TrainingJobs",
    )
    assert set(reasons.values()) <= {"Suspended", "InvalidSpec"}, reasons
    assert operator.process.poll() is None, "the operator exited"
    print(
        f"generated {len(accepted) + len(refused)}: refused {len(refused)} by the API server,"
        f" accepted {len(accepted)} ({sorted(set(reasons.values()))})"
    )
