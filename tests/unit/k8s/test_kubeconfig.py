"""The kubeconfig loader reads files as kubectl does, and says which field is wrong.

Aspects: which files (``--kubeconfig`` alone, ``KUBECONFIG`` merged with missing files skipped,
``~/.kube/config``, the pod's ServiceAccount); merging (first file wins per name and for
current-context); relative paths resolved against the defining file's directory (exec command
too, but not a bare command name); ``--context`` and ``-n`` over the file; impersonation from
flags over the user's fields; exec plugin settings (v1 needs interactiveMode); credentials
(data, files, tokens, basic auth); clear errors naming the file and the field.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.k8s.kubeconfig import (
    ExecConfig,
    Impersonation,
    KubeconfigError,
    Overrides,
    load,
)

pytestmark = pytest.mark.unit


def _write(path: Path, **config: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", **config}))
    return path


def _cluster(name: str, server: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "cluster": {"server": server, **more}}


def _context(name: str, cluster: str, user: str | None = None, **more: Any) -> dict[str, Any]:
    body = {"cluster": cluster, **more}
    if user is not None:
        body["user"] = user
    return {"name": name, "context": body}


def _user(name: str, **body: Any) -> dict[str, Any]:
    return {"name": name, "user": body}


def _load(tmp_path: Path, kubeconfig: str = "", **kwargs: Any) -> Any:
    environ = {"KUBECONFIG": kubeconfig} if kubeconfig else {}
    return load(
        kwargs.pop("overrides", None),
        environ=environ,
        home=tmp_path / "home",
        service_account=tmp_path / "no-service-account",
        **kwargs,
    )


def test_kubeconfig_files_merge_first_wins_per_name_and_for_current_context(
    tmp_path: Path,
) -> None:
    first = _write(
        tmp_path / "a" / "config",
        clusters=[_cluster("shared", "https://first:6443")],
        users=[_user("alice", token="from-first")],
        contexts=[_context("dev", "shared", "alice", namespace="team-a")],
        **{"current-context": "dev"},
    )
    second = _write(
        tmp_path / "b" / "config",
        clusters=[_cluster("shared", "https://second:6443"), _cluster("prod", "https://prod:6443")],
        users=[_user("alice", token="from-second"), _user("bob", token="bob-token")],
        contexts=[_context("prod", "prod", "bob"), _context("dev", "prod", "bob")],
        **{"current-context": "prod"},
    )
    missing = tmp_path / "nowhere" / "config"
    listed = f"{missing}:{first}::{second}"

    target = _load(tmp_path, listed)
    assert (target.server, target.token, target.namespace, target.context) == (
        "https://first:6443",
        "from-first",
        "team-a",
        "dev",
    )
    # A context only the second file defines, with a user only the second file has.
    prod = _load(tmp_path, listed, overrides=Overrides(context="prod"))
    assert (prod.server, prod.token, prod.namespace) == (
        "https://prod:6443",
        "bob-token",
        "default",
    )
    # The order of KUBECONFIG decides: reversed, the second file's names and context win.
    reversed_order = _load(tmp_path, f"{second}:{first}")
    assert (reversed_order.context, reversed_order.server) == ("prod", "https://prod:6443")
    assert _load(tmp_path, f"{second}:{first}", overrides=Overrides(context="dev")).server == (
        "https://prod:6443"
    )


def test_flags_and_defaults(tmp_path: Path) -> None:
    config = _write(
        tmp_path / "home" / ".kube" / "config",
        clusters=[_cluster("c", "https://c:6443/")],
        users=[_user("u", token="t", **{"as": "kube-user", "as-groups": ["g1"]})],
        contexts=[_context("ctx", "c", "u", namespace="ns-of-context")],
        **{"current-context": "ctx"},
    )
    # ~/.kube/config when KUBECONFIG is unset; the user's own impersonation fields.
    target = _load(tmp_path)
    assert target.namespace == "ns-of-context"
    assert target.impersonation == Impersonation("kube-user", ("g1",))
    # Flags win over the file.
    flagged = _load(
        tmp_path,
        overrides=Overrides(
            kubeconfig=config,
            namespace="ns-of-flag",
            impersonate="alice",
            impersonate_groups=("approvers", "devs"),
            impersonate_uid="42",
        ),
    )
    assert flagged.namespace == "ns-of-flag"
    assert flagged.impersonation.headers() == [
        ("Impersonate-User", "alice"),
        ("Impersonate-Group", "approvers"),
        ("Impersonate-Group", "devs"),
        ("Impersonate-Uid", "42"),
    ]
    # --kubeconfig alone: KUBECONFIG's files are not read.
    other = _write(
        tmp_path / "other",
        clusters=[_cluster("o", "https://o:6443")],
        contexts=[_context("o", "o")],
        **{"current-context": "o"},
    )
    alone = _load(tmp_path, str(config), overrides=Overrides(kubeconfig=other))
    assert (alone.server, alone.token) == ("https://o:6443", None)


def test_relative_paths_resolve_against_the_file_that_names_them(tmp_path: Path) -> None:
    folder = tmp_path / "configs" / "team"
    (folder / "pki").mkdir(parents=True)
    (folder / "pki" / "ca.crt").write_bytes(b"CA PEM")
    (folder / "pki" / "me.crt").write_bytes(b"CERT PEM")
    (folder / "pki" / "me.key").write_bytes(b"KEY PEM")
    (folder / "token").write_text("file-token\n")
    exec_plugin = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "./bin/get-token",
        "args": ["--cluster", "c"],
        "env": [{"name": "AWS_PROFILE", "value": "prod"}],
        "interactiveMode": "Never",
        "provideClusterInfo": True,
    }
    config = _write(
        folder / "config",
        clusters=[_cluster("c", "https://c:6443", **{"certificate-authority": "pki/ca.crt"})],
        users=[
            _user("cert", **{"client-certificate": "pki/me.crt", "client-key": "pki/me.key"}),
            _user("file", tokenFile="token"),
            _user("exec", exec=exec_plugin),
            _user("on-path", exec={**exec_plugin, "command": "aws"}),
        ],
        contexts=[_context(name, "c", name) for name in ("cert", "file", "exec", "on-path")],
    )
    # Loaded from elsewhere (another working directory must not matter).
    listed = f"{config}"
    cert = _load(tmp_path, listed, overrides=Overrides(context="cert"))
    assert (cert.ca_data, cert.client_certificate, cert.client_key) == (
        b"CA PEM",
        b"CERT PEM",
        b"KEY PEM",
    )
    assert _load(tmp_path, listed, overrides=Overrides(context="file")).token_file == (
        folder / "token"
    )
    plugin = _load(tmp_path, listed, overrides=Overrides(context="exec")).exec
    assert plugin == ExecConfig(
        api_version="client.authentication.k8s.io/v1",
        command=str(folder / "bin" / "get-token"),
        args=("--cluster", "c"),
        env=(("AWS_PROFILE", "prod"),),
        interactive_mode="Never",
        provide_cluster_info=True,
        user="exec",
    )
    # A bare name is looked up on PATH when run, as kubectl does.
    assert _load(tmp_path, listed, overrides=Overrides(context="on-path")).exec.command == "aws"
    # The cluster as an exec plugin with provideClusterInfo sees it.
    info = _load(tmp_path, listed, overrides=Overrides(context="exec")).cluster_info
    assert info["server"] == "https://c:6443"
    assert base64.b64decode(info["certificate-authority-data"]) == b"CA PEM"


def test_data_fields_and_basic_auth(tmp_path: Path) -> None:
    def b64(text: bytes) -> str:
        return base64.b64encode(text).decode()

    config = _write(
        tmp_path / "config",
        clusters=[
            _cluster(
                "c",
                "https://c:6443",
                **{
                    "certificate-authority-data": b64(b"CA"),
                    "tls-server-name": "api.internal",
                    "proxy-url": "http://proxy:3128",
                },
            ),
            _cluster("lab", "https://lab:6443", **{"insecure-skip-tls-verify": True}),
        ],
        users=[
            _user(
                "u",
                **{"client-certificate-data": b64(b"CERT"), "client-key-data": b64(b"KEY")},
            ),
            _user("basic", username="admin", password="secret"),
        ],
        contexts=[_context("c", "c", "u"), _context("lab", "lab", "basic")],
        **{"current-context": "c"},
    )
    target = _load(tmp_path, str(config))
    assert (target.ca_data, target.client_certificate, target.client_key) == (
        b"CA",
        b"CERT",
        b"KEY",
    )
    assert (target.tls_server_name, target.proxy_url, target.insecure) == (
        "api.internal",
        "http://proxy:3128",
        False,
    )
    lab = _load(tmp_path, str(config), overrides=Overrides(context="lab"))
    assert (lab.insecure, lab.username, lab.password) == (True, "admin", "secret")


def test_a_pod_uses_its_service_account(tmp_path: Path) -> None:
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("pod-token")
    (account / "ca.crt").write_bytes(b"CLUSTER CA")
    (account / "namespace").write_text("mlops-system\n")
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    target = load(environ=environ, home=tmp_path / "home", service_account=account)
    assert (target.server, target.namespace, target.ca_data, target.token_file) == (
        "https://[fd00::1]:443",
        "mlops-system",
        b"CLUSTER CA",
        account / "token",
    )
    # A kubeconfig, when there is one, comes first (as in client-go).
    config = _write(
        tmp_path / "home" / ".kube" / "config",
        clusters=[_cluster("c", "https://c:6443")],
        contexts=[_context("c", "c")],
        **{"current-context": "c"},
    )
    assert config.is_file()
    assert load(environ=environ, home=tmp_path / "home", service_account=account).server == (
        "https://c:6443"
    )


def _refusal(tmp_path: Path, overrides: Overrides | None = None, **config: Any) -> str:
    path = _write(tmp_path / "config", **config)
    with pytest.raises(KubeconfigError) as caught:
        _load(tmp_path, str(path), overrides=overrides)
    return str(caught.value)


_BASE: dict[str, Any] = {
    "clusters": [_cluster("c", "https://c:6443")],
    "contexts": [_context("c", "c", "u")],
    "users": [_user("u", token="t")],
    "current-context": "c",
}


@pytest.mark.parametrize(
    ("change", "overrides", "message"),
    [
        ({"current-context": None}, None, "no current-context in"),
        ({}, Overrides(context="prod"), "context 'prod' is not in"),
        (
            {"clusters": [{"name": "c", "cluster": {}}]},
            None,
            "clusters[c].cluster.server is missing",
        ),
        ({"contexts": [_context("c", "elsewhere", "u")]}, None, "names cluster 'elsewhere'"),
        ({"contexts": [_context("c", "c", "nobody")]}, None, "names user 'nobody'"),
        (
            {"contexts": [{"name": "c", "context": {"user": "u"}}]},
            None,
            "contexts[c].context.cluster is missing",
        ),
        ({"clusters": [{"cluster": {"server": "x"}}]}, None, "clusters[0].name is missing"),
        (
            {"users": [_user("u", **{"client-certificate-data": "bm90"})]},
            None,
            "users[u].user.client-key is missing",
        ),
        (
            {"users": [_user("u", **{"client-key-data": "!!"})]},
            None,
            "users[u].user.client-key-data is not valid base64",
        ),
        (
            {"clusters": [_cluster("c", "https://c", **{"insecure-skip-tls-verify": "yes"})]},
            None,
            "clusters[c].cluster.insecure-skip-tls-verify must be true or false",
        ),
        (
            {"users": [_user("u", exec={"command": "aws"})]},
            None,
            "users[u].user.exec.apiVersion is missing",
        ),
        (
            {"users": [_user("u", exec={"apiVersion": "client.authentication.k8s.io/v1"})]},
            None,
            "users[u].user.exec.command is missing",
        ),
        (
            {
                "users": [
                    _user(
                        "u",
                        exec={"apiVersion": "client.authentication.k8s.io/v1", "command": "aws"},
                    )
                ]
            },
            None,
            "users[u].user.exec.interactiveMode is required in client.authentication.k8s.io/v1",
        ),
        (
            {
                "users": [
                    _user(
                        "u",
                        exec={
                            "apiVersion": "client.authentication.k8s.io/v1alpha1",
                            "command": "x",
                        },
                    )
                ]
            },
            None,
            "exec.apiVersion 'client.authentication.k8s.io/v1alpha1' is not supported",
        ),
        (
            {"users": [_user("u", **{"auth-provider": {"name": "gcp"}})]},
            None,
            (
                "auth-provider 'gcp' is not supported (kubectl removed auth-provider plugins); use"
                " an exec plugin instead: gke-gcloud-auth-plugin"
            ),
        ),
        (
            {},
            Overrides(impersonate_groups=("g",)),
            "--as-group, --as-uid and as-user-extra need --as",
        ),
    ],
)
def test_a_bad_kubeconfig_is_refused_naming_the_file_and_field(
    tmp_path: Path, change: dict[str, Any], overrides: Overrides | None, message: str
) -> None:
    refusal = _refusal(tmp_path, overrides, **(_BASE | change))
    assert message in refusal
    if overrides is None:
        assert str(tmp_path / "config") in refusal


def test_no_kubeconfig_at_all_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match=r"no kubeconfig: none of KUBECONFIG's files exist"):
        _load(tmp_path, str(tmp_path / "absent"))
    with pytest.raises(KubeconfigError, match=r"no kubeconfig: no .*/home/.kube/config"):
        _load(tmp_path)
    with pytest.raises(KubeconfigError, match=r"--kubeconfig .*/absent: no such file"):
        _load(tmp_path, overrides=Overrides(kubeconfig=tmp_path / "absent"))
    (tmp_path / "broken").write_text("clusters: [unclosed")
    with pytest.raises(KubeconfigError, match=r"broken: not valid YAML"):
        _load(tmp_path, str(tmp_path / "broken"))
