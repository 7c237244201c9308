"""Where the API server is and who to be there: kubeconfig files read as kubectl reads them.

The one loader, of the operator (`mlops operator run`) and of the CLI (`mlops promote`,
`history`, `reproduce`, `status`, `console` …): a platform engineer's kubeconfig is what
kubectl accepts, so this follows client-go's rules rather than a subset of them:

- **Which files.** ``--kubeconfig`` alone when given (it must exist); else every file of
  ``KUBECONFIG`` (``os.pathsep``-separated; missing ones skipped, as kubectl skips them); else
  ``~/.kube/config``; else, in a pod, its ServiceAccount (the token file, re-read as the
  kubelet rotates it, the CA and the namespace beside it).
- **Merging.** The first file that names a cluster, user or context wins for that name, and
  the first ``current-context`` wins; a relative path in a file (certificate-authority,
  client-certificate, client-key, tokenFile, an exec command with a ``/``) is resolved against
  that file's directory.
- **Choosing.** ``--context`` over ``current-context``; the namespace is ``-n`` over the
  context's over ``default``; ``--as``/``--as-group``/``--as-uid`` over the user's ``as``,
  ``as-groups``, ``as-uid`` and ``as-user-extra``.
- **Credentials.** Client certificates and keys (files or data), bearer tokens (``token``,
  ``tokenFile``), basic auth, and exec credential plugins (`execcredential`); the legacy
  ``auth-provider`` plugins, removed from kubectl, get a clear error naming the exec plugin
  that replaces them.

Everything here is parsing: a mistake in a file is a `KubeconfigError` that names the file
and the field, never a ``KeyError`` from deep inside a request. `connection.Connection`
turns the result into requests.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "ExecConfig",
    "Impersonation",
    "KubeconfigError",
    "Overrides",
    "Target",
    "load",
]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where the kubelet mounts a pod's ServiceAccount token, CA and namespace."""

EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)
"""The ExecCredential versions kubectl still speaks (v1alpha1 was removed in 1.24)."""

INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")

_LEGACY_PROVIDERS = {
    "gcp": "gke-gcloud-auth-plugin",
    "azure": "kubelogin (Azure/kubelogin)",
    "oidc": "kubelogin (int128/kubelogin)",
}


class KubeconfigError(ValueError):
    """A kubeconfig (or the flags over it) that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Overrides:
    """What the command line says over the kubeconfig (kubectl's global flags)."""

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None
    impersonate: str | None = None
    impersonate_groups: tuple[str, ...] = ()
    impersonate_uid: str | None = None


@dataclass(frozen=True)
class Impersonation:
    """Who to act as (``Impersonate-*`` headers): RBAC decides for that identity."""

    user: str | None = None
    groups: tuple[str, ...] = ()
    uid: str | None = None
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def headers(self) -> list[tuple[str, str]]:
        """The request headers, repeated for each group and extra value."""
        if self.user is None:
            return []
        headers = [("Impersonate-User", self.user)]
        headers += [("Impersonate-Group", group) for group in self.groups]
        if self.uid:
            headers.append(("Impersonate-Uid", self.uid))
        headers += [(f"Impersonate-Extra-{key}", v) for key, values in self.extra for v in values]
        return headers


@dataclass(frozen=True)
class ExecConfig:
    """A user's exec credential plugin (``users[].user.exec``), paths resolved."""

    api_version: str
    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    interactive_mode: str = "IfAvailable"
    provide_cluster_info: bool = False
    install_hint: str | None = None
    user: str = ""
    """The user entry's name, for messages."""


@dataclass(frozen=True)
class Target:
    """One API server and how to authenticate there: the loader's answer."""

    server: str
    namespace: str
    source: str
    """Where this came from, for messages: ``context NAME of FILES`` or the ServiceAccount."""
    context: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    client_certificate: bytes | None = None
    client_key: bytes | None = None
    token: str | None = None
    token_file: Path | None = None
    username: str | None = None
    password: str | None = None
    exec: ExecConfig | None = None
    impersonation: Impersonation = field(default_factory=Impersonation)
    cluster_info: dict[str, Any] = field(default_factory=dict)
    """The cluster as an exec plugin with ``provideClusterInfo`` sees it (``spec.cluster``)."""


@dataclass
class _Entry:
    """A named cluster, user or context, with the file that defined it."""

    body: dict[str, Any]
    file: Path


@dataclass
class _Merged:
    files: list[Path]
    clusters: dict[str, _Entry] = field(default_factory=dict)
    users: dict[str, _Entry] = field(default_factory=dict)
    contexts: dict[str, _Entry] = field(default_factory=dict)
    current_context: str | None = None

    def describe(self) -> str:
        return ", ".join(str(f) for f in self.files)


def _files(overrides: Overrides, environ: Mapping[str, str], home: Path) -> list[Path]:
    """The kubeconfig files to merge, in precedence order (empty: none found)."""
    if overrides.kubeconfig is not None:
        path = overrides.kubeconfig.expanduser()
        if not path.is_file():
            raise KubeconfigError(f"--kubeconfig {path}: no such file")
        return [path]
    listed = environ.get("KUBECONFIG", "")
    if listed:
        paths = [Path(p).expanduser() for p in listed.split(os.pathsep) if p.strip()]
        unique = list(dict.fromkeys(paths))
        return [p for p in unique if p.is_file()]
    default = home / ".kube" / "config"
    return [default] if default.is_file() else []


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise KubeconfigError(f"{path}: cannot be read: {error}") from error
    except yaml.YAMLError as error:
        raise KubeconfigError(f"{path}: not valid YAML: {error}") from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise KubeconfigError(f"{path}: a kubeconfig is a mapping, not {type(loaded).__name__}")
    return loaded


def _merge(files: Sequence[Path]) -> _Merged:
    merged = _Merged(list(files))
    for path in files:
        config = _read(path)
        for section, key, into in (
            ("clusters", "cluster", merged.clusters),
            ("users", "user", merged.users),
            ("contexts", "context", merged.contexts),
        ):
            items = config.get(section) or []
            if not isinstance(items, list):
                raise KubeconfigError(f"{path}: {section} must be a list")
            for index, item in enumerate(items):
                name = item.get("name") if isinstance(item, dict) else None
                if not isinstance(name, str) or not name:
                    raise KubeconfigError(f"{path}: {section}[{index}].name is missing")
                body = item.get(key) or {}
                if not isinstance(body, dict):
                    raise KubeconfigError(f"{path}: {section}[{name}].{key} must be a mapping")
                # client-go's rule: the first file to define a name keeps it.
                into.setdefault(name, _Entry(body, path))
        current = config.get("current-context")
        if merged.current_context is None and current:
            merged.current_context = str(current)
    return merged


def _where(entry: _Entry, section: str, name: str, key: str) -> str:
    """The field as a path into the file, e.g. ``FILE: users[alice].user.client-key``."""
    return f"{entry.file}: {section}[{name}].{section[:-1]}.{key}"


def _string(entry: _Entry, section: str, name: str, key: str) -> str | None:
    value = entry.body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise KubeconfigError(f"{_where(entry, section, name, key)} must be a string")
    return value


def _path(entry: _Entry, section: str, name: str, key: str) -> Path | None:
    value = _string(entry, section, name, key)
    if value is None:
        return None
    path = Path(value).expanduser()
    # Relative to the file that said it, as kubectl resolves them.
    return path if path.is_absolute() else entry.file.parent / path


def _bytes(entry: _Entry, section: str, name: str, key: str) -> bytes | None:
    """``KEY-data`` (base64) or the file at ``KEY`` (both at once is an error, as in kubectl)."""
    data = _string(entry, section, name, f"{key}-data")
    path = _path(entry, section, name, key)
    if data is not None and path is not None:
        raise KubeconfigError(
            f"{_where(entry, section, name, key)}: give {key} or {key}-data, not both"
        )
    if data is not None:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as error:
            where = _where(entry, section, name, f"{key}-data")
            raise KubeconfigError(f"{where} is not valid base64: {error}") from error
    if path is not None:
        try:
            return path.read_bytes()
        except OSError as error:
            where = _where(entry, section, name, key)
            raise KubeconfigError(f"{where}: cannot read {path}: {error}") from error
    return None


def _flag(entry: _Entry, section: str, name: str, key: str) -> bool:
    value = entry.body.get(key, False)
    if not isinstance(value, bool):
        raise KubeconfigError(f"{_where(entry, section, name, key)} must be true or false")
    return value


def _exec(entry: _Entry, name: str) -> ExecConfig:
    body = entry.body["exec"]
    where = f"{entry.file}: users[{name}].user.exec"
    if not isinstance(body, dict):
        raise KubeconfigError(f"{where} must be a mapping")
    api_version = body.get("apiVersion")
    if not api_version:
        raise KubeconfigError(
            f"{where}.apiVersion is missing (one of {', '.join(EXEC_API_VERSIONS)})"
        )
    if api_version not in EXEC_API_VERSIONS:
        raise KubeconfigError(
            f"{where}.apiVersion {api_version!r} is not supported (one of"
            f" {', '.join(EXEC_API_VERSIONS)})"
        )
    command = body.get("command")
    if not isinstance(command, str) or not command:
        raise KubeconfigError(f"{where}.command is missing")
    if os.sep in command and not Path(command).is_absolute():
        # A path (not a name looked up on PATH) is relative to the kubeconfig, as in kubectl.
        command = str(entry.file.parent / command)
    mode = body.get("interactiveMode")
    if mode is None:
        if api_version.endswith("/v1"):
            raise KubeconfigError(
                f"{where}.interactiveMode is required in {api_version} (Never, IfAvailable or"
                " Always)"
            )
        mode = "IfAvailable"
    if mode not in INTERACTIVE_MODES:
        raise KubeconfigError(
            f"{where}.interactiveMode {mode!r} is not one of {', '.join(INTERACTIVE_MODES)}"
        )
    args = body.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise KubeconfigError(f"{where}.args must be a list of strings")
    env: list[tuple[str, str]] = []
    for index, pair in enumerate(body.get("env") or []):
        if not isinstance(pair, dict) or not isinstance(pair.get("name"), str):
            raise KubeconfigError(f"{where}.env[{index}].name is missing")
        env.append((pair["name"], str(pair.get("value", ""))))
    return ExecConfig(
        api_version=api_version,
        command=command,
        args=tuple(args),
        env=tuple(env),
        interactive_mode=mode,
        provide_cluster_info=bool(body.get("provideClusterInfo", False)),
        install_hint=body.get("installHint") or None,
        user=name,
    )


def _impersonation(entry: _Entry | None, name: str, overrides: Overrides) -> Impersonation:
    body = entry.body if entry is not None else {}
    user = overrides.impersonate or body.get("as") or None
    groups = overrides.impersonate_groups or tuple(body.get("as-groups") or ())
    uid = overrides.impersonate_uid or body.get("as-uid") or None
    extra_body = body.get("as-user-extra") or {}
    if not isinstance(extra_body, dict):
        raise KubeconfigError(f"users[{name}].user.as-user-extra must be a mapping of lists")
    extra = tuple((str(k), tuple(str(v) for v in values)) for k, values in extra_body.items())
    if user is None and (groups or uid or extra):
        # The API server refuses groups without a user; say so before it does.
        raise KubeconfigError(
            "--as-group, --as-uid and as-user-extra need --as (or the user's `as`): the"
            " API server impersonates groups only of a user"
        )
    return Impersonation(user, tuple(groups), uid, extra)


def _user_credentials(entry: _Entry, name: str) -> dict[str, Any]:
    section = "users"
    provider = entry.body.get("auth-provider")
    if provider:
        kind = provider.get("name", "?") if isinstance(provider, dict) else "?"
        instead = _LEGACY_PROVIDERS.get(kind, "the provider's exec credential plugin")
        raise KubeconfigError(
            f"{entry.file}: users[{name}].user.auth-provider {kind!r} is not supported (kubectl"
            f" removed auth-provider plugins); use an exec plugin instead: {instead}"
        )
    found: dict[str, Any] = {
        "client_certificate": _bytes(entry, section, name, "client-certificate"),
        "client_key": _bytes(entry, section, name, "client-key"),
        "token": _string(entry, section, name, "token"),
        "token_file": _path(entry, section, name, "tokenFile"),
        "username": _string(entry, section, name, "username"),
        "password": _string(entry, section, name, "password"),
        "exec": _exec(entry, name) if entry.body.get("exec") else None,
    }
    if (found["client_certificate"] is None) != (found["client_key"] is None):
        missing = "client-key" if found["client_key"] is None else "client-certificate"
        raise KubeconfigError(
            f"{entry.file}: users[{name}].user.{missing} is missing (a client certificate needs"
            " its key, and a key its certificate)"
        )
    return found


def _from_kubeconfig(merged: _Merged, overrides: Overrides) -> Target:
    context_name = overrides.context or merged.current_context
    names = ", ".join(sorted(merged.contexts)) or "none"
    if not context_name:
        raise KubeconfigError(
            f"no current-context in {merged.describe()}: pass --context NAME (contexts: {names})"
        )
    context = merged.contexts.get(context_name)
    if context is None:
        raise KubeconfigError(
            f"context {context_name!r} is not in {merged.describe()} (contexts: {names})"
        )
    cluster_name = _string(context, "contexts", context_name, "cluster")
    if cluster_name is None:
        raise KubeconfigError(f"{_where(context, 'contexts', context_name, 'cluster')} is missing")
    cluster = merged.clusters.get(cluster_name)
    if cluster is None:
        raise KubeconfigError(
            f"context {context_name!r} names cluster {cluster_name!r}, which is not in"
            f" {merged.describe()}"
        )
    user_name = _string(context, "contexts", context_name, "user")
    user = merged.users.get(user_name) if user_name else None
    if user_name and user is None:
        raise KubeconfigError(
            f"context {context_name!r} names user {user_name!r}, which is not in"
            f" {merged.describe()}"
        )
    server = _string(cluster, "clusters", cluster_name, "server")
    if server is None:
        raise KubeconfigError(f"{_where(cluster, 'clusters', cluster_name, 'server')} is missing")
    ca = _bytes(cluster, "clusters", cluster_name, "certificate-authority")
    insecure = _flag(cluster, "clusters", cluster_name, "insecure-skip-tls-verify")
    tls_server_name = _string(cluster, "clusters", cluster_name, "tls-server-name")
    proxy_url = _string(cluster, "clusters", cluster_name, "proxy-url")
    credentials = _user_credentials(user, user_name or "") if user is not None else {}
    cluster_info: dict[str, Any] = {"server": server, "insecure-skip-tls-verify": insecure}
    if ca is not None:
        cluster_info["certificate-authority-data"] = base64.b64encode(ca).decode()
    if tls_server_name:
        cluster_info["tls-server-name"] = tls_server_name
    if proxy_url:
        cluster_info["proxy-url"] = proxy_url
    for extension in cluster.body.get("extensions") or []:
        # The per-cluster configuration a plugin reads (client-go's reserved extension name).
        if (
            isinstance(extension, dict)
            and extension.get("name") == "client.authentication.k8s.io/exec"
        ):
            cluster_info["config"] = extension.get("extension")
    namespace = (
        overrides.namespace or _string(context, "contexts", context_name, "namespace") or "default"
    )
    return Target(
        server=server,
        namespace=namespace,
        source=f"context {context_name!r} of {merged.describe()}",
        context=context_name,
        ca_data=ca,
        insecure=insecure,
        tls_server_name=tls_server_name,
        proxy_url=proxy_url,
        impersonation=_impersonation(user, user_name or "", overrides),
        cluster_info=cluster_info,
        **credentials,
    )


def _in_cluster(overrides: Overrides, environ: Mapping[str, str], account: Path) -> Target | None:
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    token = account / "token"
    if not host or not port or not token.is_file():
        return None
    if overrides.context:
        raise KubeconfigError(
            f"--context {overrides.context}: no kubeconfig was found (KUBECONFIG,"
            " ~/.kube/config), and in a pod there is only the ServiceAccount"
        )
    namespace_file = account / "namespace"
    namespace = overrides.namespace or (
        namespace_file.read_text().strip() if namespace_file.is_file() else "default"
    )
    ca_file = account / "ca.crt"
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    return Target(
        server=f"https://{host}:{port}",
        namespace=namespace,
        source=f"the pod's ServiceAccount ({account})",
        ca_data=ca_file.read_bytes() if ca_file.is_file() else None,
        token_file=token,
        impersonation=_impersonation(None, "", overrides),
    )


def load(
    overrides: Overrides | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    service_account: Path = SERVICE_ACCOUNT_DIR,
) -> Target:
    """The API server and credentials the kubeconfig (module docstring) and `overrides` name.

    `environ`, `home` and `service_account` default to the process's; tests pass their own.
    """
    overrides = overrides or Overrides()
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    files = _files(overrides, environ, home)
    if files:
        return _from_kubeconfig(_merge(files), overrides)
    found = _in_cluster(overrides, environ, service_account)
    if found is not None:
        return found
    listed = environ.get("KUBECONFIG")
    where = f"none of KUBECONFIG's files exist ({listed})" if listed else f"no {home}/.kube/config"
    raise KubeconfigError(
        f"no kubeconfig: {where}, and this is not a pod with a ServiceAccount; set KUBECONFIG or"
        " pass --kubeconfig"
    )
