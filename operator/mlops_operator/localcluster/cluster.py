"""`mlops cluster up | down | status | env`: the local cluster's lifecycle.

`up` is idempotent: components already running and healthy are left alone,
missing ones are started in dependency order, each waited on until healthy. A node
started from another Python environment (another checkout's venv) would run that
checkout's code in every pod: `up` then starts the cluster afresh from its own.
`down` stops everything it started, in reverse order, by recorded PID.
"""

from __future__ import annotations

import fcntl
import shlex
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlops_operator.localcluster import (
    addons,
    binaries,
    diskimages,
    images,
    network,
    objectstore,
    pki,
    prerequisites,
)
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
from mlops_operator.localcluster.files import write_atomically
from mlops_operator.localcluster.processes import ManagedProcess

__all__ = ["ComponentStatus", "LocalCluster"]

CommandBuilder = Callable[[ClusterLayout, Ports], list[str]]


@dataclass(frozen=True)
class _Component:
    name: str
    command: CommandBuilder
    health_url: Callable[[Ports], str]
    timeout: float
    # Writes the component's configuration files before it starts.
    configure: Callable[[ClusterLayout, Ports], None] | None = None
    # Its environment, when it needs more than ours (secrets kept off its command line).
    env: Callable[[ClusterLayout], dict[str, str]] | None = None


def _kube(binary: str, build: Callable[[Path, ClusterLayout, Ports], list[str]]) -> CommandBuilder:
    return lambda layout, ports: build(binaries.KUBERNETES.path(binary), layout, ports)


def _write_corefile(layout: ClusterLayout, ports: Ports) -> None:
    (layout.root / "Corefile").write_text(addons.corefile(layout, ports))


def _write_prometheus_config(layout: ClusterLayout, ports: Ports) -> None:
    (layout.root / "prometheus.yml").write_text(addons.prometheus_config(ports))


def _prometheus(layout: ClusterLayout, ports: Ports) -> list[str]:
    return addons.prometheus_command(shutil.which("prometheus") or "prometheus", layout, ports)


_CONTROL_PLANE = (
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

_NODE = (
    _Component(
        "local-node",
        lambda layout, ports: addons.node_command(layout, ports, binaries.KUBERNETES_VERSION),
        lambda p: f"http://127.0.0.1:{p.node_health}/healthz",
        60,
    ),
    _Component(
        "kube-proxy",
        _kube("kube-proxy", addons.kube_proxy_command),
        lambda p: f"http://127.0.0.1:{p.kube_proxy_health}/healthz",
        60,
    ),
    _Component(
        "coredns",
        lambda layout, _ports: addons.coredns_command(binaries.COREDNS.path("coredns"), layout),
        lambda p: f"http://127.0.0.1:{p.coredns_health}/health",
        60,
        _write_corefile,
    ),
    _Component(
        "prometheus",
        _prometheus,
        lambda p: f"http://127.0.0.1:{p.prometheus}/-/ready",
        60,
        _write_prometheus_config,
    ),
)

# Started on request (`up(object_store=True)`), after the node: it listens on the bridge.
_OBJECT_STORE = _Component(
    "object-store",
    lambda layout, _ports: objectstore.command(
        binaries.OBJECT_STORE.path("versitygw"), layout.root
    ),
    lambda _ports: objectstore.health_url(),
    60,
    lambda layout, _ports: objectstore.prepare(layout.root),
    lambda layout: objectstore.server_env(layout.root),
)

_COMPONENTS = _CONTROL_PLANE + _NODE + (_OBJECT_STORE,)


@dataclass(frozen=True)
class ComponentStatus:
    """What `status` reports for one component."""

    name: str
    pid: int | None
    healthy: bool


def _progress(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def _node_owner_file() -> Path:
    """The claim on the node's network (bridge, pod CIDR, nftables): one owner at a time.

    Those all live in the network namespace the cluster starts in, so the claim is per
    network namespace: clusters started in namespaces of their own (``ip netns exec``)
    each run a node, side by side on one machine.
    """
    netns = Path("/proc/self/ns/net").stat().st_ino
    return Path(f"/run/mlops-operator-local-node.{netns}.owner")


class LocalCluster:
    """One local cluster, identified by its state directory.

    ``with_node=False`` runs the control plane alone (no pods run): several such
    clusters can share a machine, while only one cluster at a time owns the node.
    """

    def __init__(self, state_dir: Path | None = None, with_node: bool = True) -> None:
        self.layout = ClusterLayout((state_dir or default_state_dir()).resolve())
        self._components = _CONTROL_PLANE + (_NODE if with_node else ())
        self._with_node = with_node

    def foreign_node(self) -> Path | None:
        """The Python environment the running node comes from, when it is not this one.

        The node runs every pod's Python from its own environment (a checkout's venv), so a
        node that another checkout started runs that checkout's code in the pods, whatever
        this one's says.
        """
        argv = self._process(_NODE[0].name).argv() if self._with_node else None
        if not argv:
            return None
        # <environment>/bin/python: the environment is two levels up from the executable.
        theirs = Path(argv[0]).absolute().parent.parent.resolve()
        return None if theirs == Path(sys.prefix).resolve() else theirs

    def is_running(self) -> bool:
        """Whether any component of this cluster runs."""
        return any(self._process(c.name).pid() for c in self._components)

    def _claim_node(self) -> None:
        try:
            owner = Path(_node_owner_file().read_text().strip())
        except FileNotFoundError:
            owner = self.layout.root
        if owner != self.layout.root and ManagedProcess("local-node", owner).pid() is not None:
            raise RuntimeError(
                f"the local node's network is in use by the cluster in {owner}; "
                f"stop it first: mlops cluster --state-dir {owner} down"
            )
        _node_owner_file().write_text(f"{self.layout.root}\n")

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
            ips=["127.0.0.1", "10.96.0.1", network.GATEWAY],
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
            text = kubeconfig(self.layout, ports, identity)
            write_atomically(self.layout.kubeconfig_path(identity), text)

    def _start(self, components: tuple[_Component, ...], ports: Ports) -> None:
        for component in components:
            process = self._process(component.name)
            if process.pid() is None:
                _progress(f"starting {component.name}")
                if component.configure:
                    component.configure(self.layout, ports)
                env = component.env(self.layout) if component.env else None
                process.start(component.command(self.layout, ports), env=env)
            self._wait_healthy(component, ports)

    def _bootstrap(self) -> None:
        kubectl = binaries.KUBERNETES.path("kubectl")
        proc = subprocess.run(
            [
                str(kubectl),
                f"--kubeconfig={self.layout.admin_kubeconfig}",
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=mlops-local-cluster",
                "-f",
                "-",
            ],
            input=addons.bootstrap_manifest(),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"bootstrap objects were refused: {proc.stderr.strip()}")

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        # `up` and `down` of one cluster take turns: parallel test workers each bring
        # the shared cluster up, and two at once would both start an etcd and allocate
        # ports of their own. The lock is released with its descriptor, even on a crash.
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with (self.layout.root / "lifecycle.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def up(self, *, object_store: bool = False) -> Ports:
        """Start whatever is not running; return once every component is healthy.

        With `object_store` (and a node), the S3 object store too (`objectstore`).
        """
        if object_store and not self._with_node:
            raise ValueError("the object store listens on the node's bridge: it needs the node")
        with self._exclusive():
            extra = (binaries.OBJECT_STORE,) if object_store else ()
            binaries.ensure_binaries((*binaries.DEFAULT_COMPONENTS, *extra))
            prerequisites.ensure_packages()
            return self._up(object_store=object_store)

    def _up(self, *, object_store: bool) -> Ports:
        started = time.monotonic()
        foreign = self.foreign_node()
        if foreign is not None:
            _progress(f"the running node serves pods from {foreign}, not {sys.prefix}: restarting")
            self._down()
        ports = self.layout.load_ports()
        if ports is None or not self.is_running():
            ports = Ports.allocate()
            # A fresh etcd holds no pods, volumes or leases: the node's old data means nothing.
            self._discard_data()
            self.layout.save_ports(ports)
        self._prepare(ports)
        self._start(_CONTROL_PLANE, ports)
        self._wait_default_service_account(ports)
        if self._with_node:
            self._claim_node()
            self._bootstrap()
            self._start(_NODE, ports)
            if object_store:
                self._start((_OBJECT_STORE,), ports)
        _progress(
            f"ready in {time.monotonic() - started:.1f}s; kubeconfig: {self.layout.admin_kubeconfig}"
        )
        return ports

    def down(self) -> list[str]:
        """Stop every component (reverse order); return the names of those stopped."""
        with self._exclusive():
            return self._down()

    def _down(self) -> list[str]:
        # The node gets the longest grace: it stops its pods' processes first.
        stopped = [
            c.name
            for c in reversed(self._components + ((_OBJECT_STORE,) if self._with_node else ()))
            if self._process(c.name).stop(grace_seconds=30 if c.name == "local-node" else 10)
        ]
        if self._with_node and _owner_is(self.layout.root):
            network.remove_bridge()
            _node_owner_file().unlink(missing_ok=True)
            images.release_built_images()
        self._discard_data()
        return stopped

    def _discard_data(self) -> None:
        # A node that was killed left its volumes mounted: unmount them first, or the
        # removal would stop at their mount points and leave loop devices attached.
        diskimages.unmount_all(self.layout.data_root)
        for throwaway in (
            self.layout.etcd_data,
            self.layout.prometheus_data,
            self.layout.data_root,
            objectstore.data_dir(self.layout.root),
        ):
            shutil.rmtree(throwaway, ignore_errors=True)

    def status(self) -> list[ComponentStatus]:
        """Each component's PID (if running) and health."""
        ports = self.layout.load_ports()
        result = []
        # The object store is reported once started (a cluster without it is healthy).
        running_optional = tuple(
            c for c in (_OBJECT_STORE,) if self._with_node and self._process(c.name).pid()
        )
        for component in self._components + running_optional:
            pid = self._process(component.name).pid()
            healthy = bool(pid and ports and self._healthy(component.health_url(ports)))
            result.append(ComponentStatus(component.name, pid, healthy))
        return result

    def object_store(self) -> objectstore.ObjectStore | None:
        """The object store's address and credentials while it runs, else None."""
        if self._process(_OBJECT_STORE.name).pid() is None:
            return None
        return objectstore.credentials(self.layout.root)

    def env(self) -> dict[str, str]:
        """The variables that point a shell at this cluster (and at its object store, if up)."""
        ports = self.layout.load_ports()
        prometheus = f"http://127.0.0.1:{ports.prometheus}" if ports else ""
        store = self.object_store()
        return {
            "KUBECONFIG": str(self.layout.admin_kubeconfig),
            "PROMETHEUS_URL": prometheus,
            "MLOPS_CLUSTER_DIR": str(self.layout.root),
            "PATH": f"{binaries.KUBERNETES.directory}:$PATH",
            **(store.env() | {"MLOPS_OBJECT_STORE_URI": store.uri} if store else {}),
        }

    def env_script(self) -> str:
        """`export` lines for `eval "$(mlops cluster env)"`."""
        lines = []
        for key, value in self.env().items():
            # $PATH must stay unexpanded until the shell evaluates the line.
            quoted = f'"{value}"' if "$PATH" in value else shlex.quote(value)
            lines.append(f"export {key}={quoted}")
        return "\n".join(lines) + "\n"

    def log_file(self, component: str) -> Path | None:
        """The log file of a component, or None if there is no such component."""
        if component not in {c.name for c in _COMPONENTS}:
            return None
        return self._process(component).log_file

    def pod_log_file(self, namespace: str, pod: str, container: str | None) -> Path | None:
        """A container's log on the local node (the newest pod of that name)."""
        pods = sorted(
            (self.layout.data_root / "pods").glob(f"{namespace}_{pod}_*"),
            key=lambda p: p.stat().st_mtime,
        )
        if not pods:
            return None
        logs = sorted((pods[-1] / "logs").glob("*.log"))
        if container:
            return pods[-1] / "logs" / f"{container}.log"
        return logs[0] if logs else None


def _owner_is(root: Path) -> bool:
    try:
        return Path(_node_owner_file().read_text().strip()) == root
    except FileNotFoundError:
        return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
