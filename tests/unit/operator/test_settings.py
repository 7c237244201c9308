"""The operator's settings: environment variables, flags over them, and refusals.

Aspects: MLOPS_NAMESPACES as a comma list (empty: cluster-wide); a flag wins over
its variable and an absent flag does not; -A clears the namespaces; --kubeconfig and
--context (MLOPS_KUBE_CONTEXT) name the credentials; the default
images carry the release; two endpoints on one port, or a watch client timeout not
above the server's, are refused with a message; the workload pods' ids come as JSON, each
defaulting to the images' user when left out and unset by null, root refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mlops_operator import __version__
from mlops_operator.api.pods import WorkloadSecurityContext
from mlops_operator.cli import build_parser
from mlops_operator.podcontract import IMAGE_USER
from mlops_operator.runtime.commands import settings_from
from mlops_operator.runtime.settings import OperatorSettings


def _settings(*argv: str) -> OperatorSettings:
    return settings_from(build_parser().parse_args(["operator", "run", *argv]))


def test_defaults_watch_the_whole_cluster_standalone() -> None:
    settings = OperatorSettings()
    assert settings.namespaces == []
    assert settings.clusterwide
    assert settings.peering is None
    assert (settings.metrics_port, settings.liveness_port) == (8080, 8081)
    assert settings.trainer_image == f"ghcr.io/mlops-operator/trainer:{__version__}"
    assert settings.server_image == f"ghcr.io/mlops-operator/server:{__version__}"


def test_namespaces_come_from_a_comma_separated_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_NAMESPACES", "team-a, team-b,,")
    settings = OperatorSettings()
    assert settings.namespaces == ["team-a", "team-b"]
    assert not settings.clusterwide


def test_flags_win_over_variables_and_absent_flags_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_METRICS_PORT", "9100")
    monkeypatch.setenv("MLOPS_LIVENESS_PORT", "9101")
    monkeypatch.setenv("MLOPS_NAMESPACES", "from-env")
    settings = _settings("--metrics-port", "9200", "-n", "ns1", "--namespace", "ns2")
    assert settings.metrics_port == 9200
    assert settings.liveness_port == 9101
    assert settings.namespaces == ["ns1", "ns2"]


def test_all_namespaces_overrides_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_NAMESPACES", "team-a")
    assert _settings("--all-namespaces").clusterwide


def test_workload_ids_are_the_images_user_unless_given_or_unset_by_null(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert OperatorSettings().workload_security_context == WorkloadSecurityContext(
        run_as_user=IMAGE_USER, run_as_group=IMAGE_USER, fs_group=IMAGE_USER
    )
    # What the chart renders on OpenShift (values-openshift.yaml): every id null.
    monkeypatch.setenv(
        "MLOPS_WORKLOAD_SECURITY_CONTEXT",
        '{"runAsUser": null, "runAsGroup": null, "fsGroup": null}',
    )
    assert OperatorSettings().workload_security_context.pod_fields() == {}
    monkeypatch.setenv(
        "MLOPS_WORKLOAD_SECURITY_CONTEXT", '{"runAsUser": 1000680000, "fsGroup": null}'
    )
    assert OperatorSettings().workload_security_context.pod_fields() == {
        "runAsUser": 1000680000,
        "runAsGroup": IMAGE_USER,
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"runAsUser": 0}', r"workload_security_context\.runAsUser\n.*greater than or equal to 1"),
        ('{"fsGroup": -1}', r"workload_security_context\.fsGroup\n"),
        ('{"runAsUsr": 1000}', r"workload_security_context\.runAsUsr\n.*Extra inputs"),
    ],
)
def test_root_or_an_unknown_id_key_is_refused_naming_it(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_WORKLOAD_SECURITY_CONTEXT", value)
    with pytest.raises(ValidationError, match=message):
        OperatorSettings()


def test_one_port_for_both_endpoints_is_refused() -> None:
    with pytest.raises(ValidationError, match="liveness_port and metrics_port are both 8080"):
        OperatorSettings(liveness_port=8080, metrics_port=8080)


def test_a_watch_client_timeout_not_above_the_server_timeout_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_WATCH_SERVER_TIMEOUT", "60")
    monkeypatch.setenv("MLOPS_WATCH_CLIENT_TIMEOUT", "60")
    with pytest.raises(ValidationError, match=r"watch_client_timeout \(60\) must exceed"):
        OperatorSettings()


def test_the_cli_reports_invalid_settings_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["operator", "run", "--metrics-port", "70000"])
    assert args.func(args) == 2
    assert "metrics_port" in capsys.readouterr().err


def test_the_kubeconfig_and_its_context_come_from_flags_over_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_KUBE_CONTEXT", "from-env")
    assert (OperatorSettings().kubeconfig, OperatorSettings().kube_context) == (None, "from-env")
    settings = _settings("--kubeconfig", "/etc/eks/config", "--context", "eks-dev")
    assert settings.kubeconfig == Path("/etc/eks/config")
    assert settings.kube_context == "eks-dev"
