"""`mlops cluster up | down | status | env`: the local cluster's lifecycle.

`up` is idempotent: components already running and healthy are left alone,
missing ones are started in dependency order, each waited on until healthy.
`down` stops everything it started, in reverse order, by recorded PID.
"""

from __future__ import annotations

import shlex
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops_operator.localcluster import binaries, pki
from mlops_operator.localcluster.controlplane import (
    CLIENTS,
    ClusterLayout,
    Ports,
    apiserver_command,
    controller_manager_command,
    default_state_dir,
    etcd_command,
    kubeconfig,
    scheduler_command,
)
from mlops_operator.localcluster.processes import ManagedProcess

__all__ = ["ComponentStatus", "LocalCluster"]

CommandBuilder = Callable[[ClusterLayout, Ports], list[str]]


@dataclass(frozen=True)
class _Component:
    name: str
    command: CommandBuilder
    health_url: Callable[[Ports], str]
    timeout: float


def _kube(binary: str, build: Callable[[Path, ClusterLayout, Ports], list[str]]) -> CommandBuilder:
    return lambda layout, ports: build(binaries.KUBERNETES.path(binary), layout, ports)


_COMPONENTS = (
    _Component(
        "etcd",
        lambda layout, ports: etcd_command(binaries.ETCD.path("etcd"), layout, ports),
        lambda p: f"http://127.0.0.1:{p.etcd_client}/health",
        60,
    ),
    _Component(
        "kube-apiserver",
        _kube("kube-apiserver", apiserver_command),
        lambda p: f"https://127.0.0.1:{p.apiserver}/readyz",
        180,
    ),
    _Component(
        "kube-controller-manager",
        _kube("kube-controller-manager", controller_manager_command),
        lambda p: f"https://127.0.0.1:{p.controller_manager}/healthz",
        120,
    ),
    _Component(
        "kube-scheduler",
        _kube("kube-scheduler", scheduler_command),
        lambda p: f"https://127.0.0.1:{p.scheduler}/healthz",
        120,
    ),
)


@dataclass(frozen=True)
class ComponentStatus:
    """What `status` reports for one component."""

    name: str
    pid: int | None
    healthy: bool


def _progress(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


class LocalCluster:
    """One local cluster, identified by its state directory."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.layout = ClusterLayout((state_dir or default_state_dir()).resolve())

    def _process(self, name: str) -> ManagedProcess:
        return ManagedProcess(name, self.layout.root)

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.layout.pki / "ca.crt"))
        # Component health endpoints serve self-signed certificates of their own.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    def _healthy(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=3, context=self._ssl_context()) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _wait_healthy(self, component: _Component, ports: Ports) -> None:
        deadline = time.monotonic() + component.timeout
        url = component.health_url(ports)
        process = self._process(component.name)
        while time.monotonic() < deadline:
            if self._healthy(url):
                return
            if process.pid() is None:
                raise RuntimeError(
                    f"{component.name} exited during start-up; see {process.log_file}:\n"
                    + _tail(process.log_file)
                )
            time.sleep(0.2)
        raise RuntimeError(
            f"{component.name} not healthy after {component.timeout:.0f}s at {url}; "
            f"see {process.log_file}:\n" + _tail(process.log_file)
        )

    def _wait_default_service_account(self, ports: Ports, timeout: float = 60) -> None:
        # Pods are refused until the controller-manager has created a namespace's
        # `default` ServiceAccount: the cluster is not usable before that.
        context = ssl.create_default_context(cafile=str(self.layout.pki / "ca.crt"))
        context.load_cert_chain(self.layout.pki / "admin.crt", self.layout.pki / "admin.key")
        url = (
            f"https://127.0.0.1:{ports.apiserver}/api/v1/namespaces/default/serviceaccounts/default"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=3, context=context):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(
            f"no default ServiceAccount after {timeout:.0f}s; see the controller-manager log"
        )

    def _prepare(self, ports: Ports) -> None:
        directory = self.layout.pki
        directory.mkdir(parents=True, exist_ok=True)
        pki.ensure_ca(directory)
        pki.ensure_sa_keys(directory)
        pki.ensure_serving_cert(
            directory,
            "apiserver",
            ips=["127.0.0.1", "10.96.0.1"],
            dns_names=[
                "kubernetes",
                "localhost",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )
        for identity in CLIENTS:
            pki.ensure_client_cert(directory, identity)
            path = self.layout.kubeconfig_path(identity)
            path.write_text(kubeconfig(self.layout, ports, identity))
            path.chmod(0o600)

    def up(self) -> Ports:
        """Start whatever is not running; return once every component is healthy."""
        binaries.ensure_binaries()
        started = time.monotonic()
        ports = self.layout.load_ports()
        if ports is None or not any(self._process(c.name).pid() for c in _COMPONENTS):
            ports = Ports.allocate()
            shutil.rmtree(self.layout.etcd_data, ignore_errors=True)
            self.layout.save_ports(ports)
        self._prepare(ports)
        for component in _COMPONENTS:
            process = self._process(component.name)
            if process.pid() is None:
                _progress(f"starting {component.name}")
                process.start(component.command(self.layout, ports))
            self._wait_healthy(component, ports)
        self._wait_default_service_account(ports)
        _progress(
            f"ready in {time.monotonic() - started:.1f}s; kubeconfig: {self.layout.admin_kubeconfig}"
        )
        return ports

    def down(self) -> list[str]:
        """Stop every component (reverse order); return the names of those stopped."""
        stopped = [c.name for c in reversed(_COMPONENTS) if self._process(c.name).stop()]
        shutil.rmtree(self.layout.etcd_data, ignore_errors=True)
        return stopped

    def status(self) -> list[ComponentStatus]:
        """Each component's PID (if running) and health."""
        ports = self.layout.load_ports()
        result = []
        for component in _COMPONENTS:
            pid = self._process(component.name).pid()
            healthy = bool(pid and ports and self._healthy(component.health_url(ports)))
            result.append(ComponentStatus(component.name, pid, healthy))
        return result

    def env(self) -> dict[str, str]:
        """The variables that point a shell at this cluster."""
        return {
            "KUBECONFIG": str(self.layout.admin_kubeconfig),
            "MLOPS_CLUSTER_DIR": str(self.layout.root),
            "PATH": f"{binaries.KUBERNETES.directory}:$PATH",
        }

    def env_script(self) -> str:
        """`export` lines for `eval "$(mlops cluster env)"`."""
        lines = []
        for key, value in self.env().items():
            # $PATH must stay unexpanded until the shell evaluates the line.
            quoted = f'"{value}"' if "$PATH" in value else shlex.quote(value)
            lines.append(f"export {key}={quoted}")
        return "\n".join(lines) + "\n"

    def log_file(self, component: str) -> Path:
        """The log file of a control-plane component."""
        return self._process(component).log_file


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
