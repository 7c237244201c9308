"""Pod overrides merged over the generated pods of the four workloads.

Aspects: layers merge in order (maps by key, env/volumes/pull secrets by name,
tolerations by value, affinity and single values replaced), the operator's labels
and annotations win, a request raised above an inherited limit raises the limit;
every builder (trainer, validator, audit, server) applies its defaults, then the
object's overrides, then the legacy ``resources``; the trainer's and validator's numeric
thread pools follow the CPUs they may use (a limit's whole CPUs, else the request rounded
up), unless an override names one; a TrainingJob's validator
overrides travel in its ModelVersion; overrides that step on the pod contract are
refused by the operator's settings; the chart's workload values (pod defaults and the
pods' ids) are the operator's defaults, in values.yaml and in the rendered base.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mlops_operator.api.gates import Gates
from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.modelversion import ModelVersion
from mlops_operator.api.pods import (
    DEFAULT_WORKLOAD_SECURITY,
    PodOverrides,
    WorkloadSecurityContext,
    contract_problems,
)
from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.audit.entry import make_entry
from mlops_operator.podcontract import THREAD_ENV
from mlops_operator.resources.audit import audit_job
from mlops_operator.resources.common import ArtifactStorage
from mlops_operator.resources.modeldeployment import serving_deployment
from mlops_operator.resources.pods import with_overrides
from mlops_operator.resources.trainingjob import build_job
from mlops_operator.resources.validation import validation_job
from mlops_operator.runtime.settings import WORKLOAD_DEFAULTS, OperatorSettings
from tests.unit.chart.rendered import BASE, by_kind, documents

ROOT = Path(__file__).resolve().parents[3]
STORAGE = ArtifactStorage()
TEMPLATE = {
    "metadata": {"labels": {"app": "x"}, "annotations": {"prometheus.io/scrape": "true"}},
    "spec": {
        "containers": [
            {"name": "main", "env": [{"name": "MLOPS_A", "value": "1"}], "volumeMounts": []},
            {"name": "side"},
        ],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    },
}


def _o(**fields: Any) -> PodOverrides:
    return PodOverrides.model_validate(fields)


def test_layers_merge_in_order() -> None:
    first = _o(
        nodeSelector={"zone": "a", "disk": "ssd"},
        tolerations=[{"key": "gpu", "operator": "Exists"}],
        affinity={"nodeAffinity": {"x": 1}},
        priorityClassName="low",
        env=[{"name": "TEAM", "value": "a"}, {"name": "KEEP", "value": "k"}],
        imagePullSecrets=[{"name": "regcred"}],
        labels={"team": "a", "app": "theirs"},
        annotations={"prometheus.io/scrape": "false", "sidecar": "on"},
    )
    second = _o(
        nodeSelector={"zone": "b"},
        tolerations=[{"key": "gpu", "operator": "Exists"}, {"key": "spot", "operator": "Exists"}],
        affinity={"podAntiAffinity": {"y": 2}},
        priorityClassName="high",
        env=[{"name": "TEAM", "value": "b"}],
        volumes=[{"name": "certs", "secret": {"secretName": "certs"}}],
        volumeMounts=[{"name": "certs", "mountPath": "/etc/certs"}],
        serviceAccountName="reader",
    )

    pod = with_overrides(TEMPLATE, "main", [first, None, second])

    spec, main = pod["spec"], pod["spec"]["containers"][0]
    assert spec["nodeSelector"] == {"zone": "b", "disk": "ssd"}
    assert spec["tolerations"] == [
        {"key": "gpu", "operator": "Exists"},
        {"key": "spot", "operator": "Exists"},
    ]
    assert spec["affinity"] == {"podAntiAffinity": {"y": 2}}
    assert (spec["priorityClassName"], spec["serviceAccountName"]) == ("high", "reader")
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert main["env"] == [
        {"name": "MLOPS_A", "value": "1"},
        {"name": "KEEP", "value": "k"},
        {"name": "TEAM", "value": "b"},
    ]
    assert [v["name"] for v in spec["volumes"]] == ["scratch", "certs"]
    assert main["volumeMounts"] == [{"name": "certs", "mountPath": "/etc/certs", "readOnly": True}]
    # The operator's keys win: its selectors and scraping depend on them.
    assert pod["metadata"]["labels"] == {"team": "a", "app": "x"}
    assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "sidecar": "on"}
    assert "env" not in pod["spec"]["containers"][1]
    assert "nodeSelector" not in TEMPLATE["spec"]  # the template itself is left as it was


def test_resources_merge_per_resource_and_keep_requests_under_limits() -> None:
    defaults = _o(resources={"requests": {"cpu": "100m", "memory": "512Mi"},
                             "limits": {"memory": "4Gi"}})  # fmt: skip
    bigger = _o(resources={"requests": {"memory": "8Gi"}})
    gpu = _o(resources={"limits": {"nvidia.com/gpu": 1}})

    pod = with_overrides(TEMPLATE, "main", [defaults, bigger, gpu])

    assert pod["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "100m", "memory": "8Gi"},
        "limits": {"memory": "8Gi", "nvidia.com/gpu": 1},
    }


def _training(**spec: Any) -> TrainingJob:
    doc = yaml.safe_load((ROOT / "manifests/examples/iris/trainingjob.yaml").read_text())
    doc["metadata"] |= {"uid": "u-1", "generation": 1}
    doc["spec"] |= spec
    return TrainingJob.model_validate(doc)


def _main(manifest: dict[str, Any], container: str) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = manifest["spec"]["template"]["spec"]
    return pod, next(c for c in pod["containers"] if c["name"] == container)


def _audit(defaults: PodOverrides) -> dict[str, Any]:
    entry = make_entry(kind="ModelDeployment", namespace="ml", name="iris", uid="u",
                       time=datetime(2026, 1, 1, tzinfo=UTC), action="Deploy",
                       version=1, reason="RolloutStarted")  # fmt: skip
    return audit_job([entry], key="audit/ml/iris.jsonl", model="iris", image="t:1",
                     storage=STORAGE, defaults=defaults)  # fmt: skip


def _validation(validator_pod_overrides: dict[str, Any]) -> dict[str, Any]:
    """The validation Job of a version carrying `validator_pod_overrides`, under the defaults."""
    version = ModelVersion.model_validate(
        {"metadata": {"name": "iris-v1", "namespace": "ml", "uid": "u-3"},
         "spec": {"modelName": "iris", "version": 1,
                  "artifact": {"uri": "pvc://c/k", "sha256": "a" * 64, "sizeBytes": 1, "opset": 17},
                  "metrics": {"accuracy": 1.0}, "primaryMetric": {"name": "accuracy", "value": 1.0},
                  "validatorPodOverrides": validator_pod_overrides}}
    )  # fmt: skip
    return validation_job(version, image="t:1", storage=STORAGE, gates=Gates(), champions={},
                          defaults=WORKLOAD_DEFAULTS["validator"])  # fmt: skip


def test_each_workload_takes_its_defaults_then_the_objects_overrides() -> None:
    overrides = {"nodeSelector": {"pool": "ml"}, "resources": {"requests": {"cpu": "2"}}}
    trainer, main = _main(
        build_job(
            _training(podOverrides=overrides), STORAGE, "t:1", defaults=WORKLOAD_DEFAULTS["trainer"]
        ),
        "trainer",
    )
    assert trainer["nodeSelector"] == {"pool": "ml"}
    assert main["resources"] == {"requests": {"cpu": "2", "memory": "512Mi"},
                                 "limits": {"memory": "4Gi"}}  # fmt: skip
    # The older spec.resources is the last layer.
    _, legacy = _main(
        build_job(_training(resources={"limits": {"cpu": "3"}}), STORAGE, "t:1",
                  defaults=WORKLOAD_DEFAULTS["trainer"]),
        "trainer",
    )  # fmt: skip
    assert legacy["resources"]["limits"] == {"memory": "4Gi", "cpu": "3"}

    mdep = ModelDeployment.model_validate(
        {"metadata": {"name": "iris", "namespace": "ml", "uid": "u-2"},
         "spec": {"modelName": "iris", "podOverrides": overrides}}
    )  # fmt: skip
    server, main = _main(
        serving_deployment(mdep, version=1, model_version="iris-v1", artifact_uri="pvc://c/k", artifact_sha256="0" * 64,
                           replicas=1, traffic=True, image="s:1", storage=STORAGE,
                           defaults=WORKLOAD_DEFAULTS["server"]),
        "server",
    )  # fmt: skip
    assert server["nodeSelector"] == {"pool": "ml"}
    assert main["resources"]["requests"] == {"cpu": "2", "memory": "256Mi"}

    audit, main = _main(_audit(_o(**overrides)), "audit")
    assert audit["nodeSelector"] == {"pool": "ml"}
    assert main["resources"] == {"requests": {"cpu": "2"}}


def test_the_validator_gets_the_versions_overrides() -> None:
    training = _training(
        validatorPodOverrides={"tolerations": [{"key": "ml", "operator": "Exists"}]}
    )
    assert training.spec.validator_pod_overrides is not None
    job = _validation(
        training.spec.validator_pod_overrides.model_dump(by_alias=True, exclude_none=True)
    )
    pod, main = _main(job, "validator")
    assert pod["tolerations"] == [{"key": "ml", "operator": "Exists"}]
    assert main["resources"]["limits"] == {"memory": "2Gi"}


def _threads(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if e["name"] in THREAD_ENV}


@pytest.mark.parametrize(
    ("overrides", "threads"),
    [
        ({}, "1"),  # the operator's default request, 100m
        ({"resources": {"requests": {"cpu": "2500m"}}}, "3"),
        ({"resources": {"requests": {"cpu": 2}}}, "2"),
        ({"resources": {"limits": {"cpu": "4"}}}, "4"),  # a limit: what the pod may use
        ({"resources": {"limits": {"cpu": "1500m"}}}, "1"),  # its whole CPUs, as the server's
        ({"resources": {"limits": {"cpu": "500m"}}}, "1"),
    ],
)  # fmt: skip
def test_numeric_threads_follow_the_cpus_the_trainer_may_use(
    overrides: dict[str, Any], threads: str
) -> None:
    job = build_job(_training(podOverrides=overrides), STORAGE, "t:1",
                    defaults=WORKLOAD_DEFAULTS["trainer"])  # fmt: skip
    assert _threads(_main(job, "trainer")[1]) == dict.fromkeys(THREAD_ENV, threads)


def test_threads_named_by_an_override_or_not_sized_are_left_alone() -> None:
    # One named, the other left to the operator, would be overruled: OpenBLAS reads its own.
    named = {"env": [{"name": "OMP_NUM_THREADS", "value": "8"}],
             "resources": {"requests": {"cpu": "2"}}}  # fmt: skip
    job = build_job(_training(podOverrides=named), STORAGE, "t:1",
                    defaults=WORKLOAD_DEFAULTS["trainer"])  # fmt: skip
    assert _threads(_main(job, "trainer")[1]) == {"OMP_NUM_THREADS": "8"}
    # Nothing to size them by: the libraries keep their own default.
    _, unsized = _main(build_job(_training(), STORAGE, "t:1", defaults=_o()), "trainer")
    assert _threads(unsized) == {}
    # The audit appender does no numeric work.
    assert _threads(_main(_audit(WORKLOAD_DEFAULTS["audit"]), "audit")[1]) == {}


def test_the_validators_threads_follow_its_cpu_request() -> None:
    job = _validation({"resources": {"requests": {"cpu": "2"}}})
    assert _threads(_main(job, "validator")[1]) == dict.fromkeys(THREAD_ENV, "2")


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"env": [{"name": "MLOPS_STORE_URI", "value": "s3://x"}]}, "env MLOPS_STORE_URI"),
        ({"volumes": [{"name": "artifacts", "emptyDir": {}}]}, "volume artifacts"),
        ({"volumes": [{"name": "x", "emptyDir": {}}],
          "volumeMounts": [{"name": "x", "mountPath": "/var/lib/mlops/artifacts"}]},
         "under the operator's paths"),
        ({"volumeMounts": [{"name": "nope", "mountPath": "/data"}]}, "no volume nope"),
    ],
)  # fmt: skip
def test_operator_defaults_may_not_step_on_the_pod_contract(
    overrides: dict[str, Any], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert any(problem in p for p in contract_problems(_o(**overrides)))
    monkeypatch.setenv("MLOPS_SERVER_POD", json.dumps(overrides))
    with pytest.raises(ValidationError, match="step on the pods' contract"):
        OperatorSettings()


def test_the_charts_workload_values_are_the_operators_defaults() -> None:
    values = yaml.safe_load((ROOT / "charts/mlops-operator/values.yaml").read_text())
    workloads = dict(values["workloads"])
    ids = workloads.pop("securityContext")
    assert {name: PodOverrides.model_validate(pod) for name, pod in workloads.items()} == (
        WORKLOAD_DEFAULTS
    )
    assert WorkloadSecurityContext.model_validate(ids) == DEFAULT_WORKLOAD_SECURITY
    (operator,) = by_kind(documents(BASE.read_text()), "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for name, defaults in WORKLOAD_DEFAULTS.items():
        assert PodOverrides.model_validate_json(env[f"MLOPS_{name.upper()}_POD"]) == defaults
    rendered = json.loads(env["MLOPS_WORKLOAD_SECURITY_CONTEXT"])
    assert rendered == DEFAULT_WORKLOAD_SECURITY.pod_fields()
