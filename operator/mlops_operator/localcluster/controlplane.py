"""The control plane's layout and command lines, as pure functions.

Everything listens on loopback only. Ports are chosen free at the first `up`
and kept in the cluster's state file, so `mlops cluster env` and the
kubeconfigs always agree with what runs.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from mlops_operator.localcluster.files import write_atomically
from mlops_operator.localcluster.pki import ClientIdentity

__all__ = [
    "ADMIN",
    "CLIENTS",
    "SERVICE_CIDR",
    "ClusterLayout",
    "Ports",
    "apiserver_command",
    "controller_manager_command",
    "default_state_dir",
    "etcd_command",
    "free_port",
    "kubeconfig",
    "scheduler_command",
]

SERVICE_CIDR = "10.96.0.0/16"

ADMIN = ClientIdentity("admin", "mlops-admin", ("system:masters",))
CONTROLLER_MANAGER = ClientIdentity("controller-manager", "system:kube-controller-manager")
SCHEDULER = ClientIdentity("scheduler", "system:kube-scheduler")
NODE_NAME = "local-0"
NODE = ClientIdentity("node", f"system:node:{NODE_NAME}", ("system:nodes",))
PROVISIONER = ClientIdentity("provisioner", "mlops:local-provisioner")
KUBE_PROXY = ClientIdentity("kube-proxy", "system:kube-proxy")
COREDNS = ClientIdentity("coredns", "mlops:coredns")
# Every identity that gets a client certificate and a kubeconfig of its own.
CLIENTS = (ADMIN, CONTROLLER_MANAGER, SCHEDULER, NODE, PROVISIONER, KUBE_PROXY, COREDNS)
DNS_SERVICE_IP = "10.96.0.10"


def default_state_dir() -> Path:
    """Where the local cluster keeps its PKI, kubeconfigs, logs and data."""
    explicit = os.environ.get("MLOPS_CLUSTER_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mlops-operator" / "cluster"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one cluster."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    node_health: int
    kube_proxy_health: int
    kube_proxy_metrics: int
    coredns_health: int
    prometheus: int

    @classmethod
    def allocate(cls) -> Ports:
        """Pick a free port for every server (distinct from each other)."""
        chosen: list[int] = []
        while len(chosen) < len(fields(cls)):
            port = free_port()
            if port not in chosen:
                chosen.append(port)
        return cls(*chosen)


@dataclass(frozen=True)
class ClusterLayout:
    """Paths of one cluster's files under its state directory."""

    root: Path

    @property
    def pki(self) -> Path:
        """Certificates and keys."""
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        """etcd's data directory: throw-away, removed by `down`."""
        return self.root / "etcd-data"

    @property
    def data_root(self) -> Path:
        """The node's data: pod directories, volumes, address leases."""
        return self.root / "node"

    @property
    def prometheus_data(self) -> Path:
        """Prometheus's TSDB (throw-away, like etcd's data)."""
        return self.root / "prometheus-data"

    @property
    def state_file(self) -> Path:
        """The chosen ports and versions of the running cluster."""
        return self.root / "cluster.json"

    @property
    def admin_kubeconfig(self) -> Path:
        """The cluster-admin kubeconfig (what `mlops cluster env` exports)."""
        return self.kubeconfig_path(ADMIN)

    def kubeconfig_path(self, identity: ClientIdentity) -> Path:
        """The kubeconfig that authenticates as `identity`."""
        return self.root / f"{identity.file_stem}.kubeconfig"

    def load_ports(self) -> Ports | None:
        """The ports recorded by the last `up`, if any."""
        try:
            return Ports(**json.loads(self.state_file.read_text())["ports"])
        except (FileNotFoundError, KeyError, TypeError, ValueError):
            return None

    def save_ports(self, ports: Ports) -> None:
        """Record the ports of this cluster."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomically(self.state_file, json.dumps({"ports": asdict(ports)}, indent=2), 0o644)


def kubeconfig(layout: ClusterLayout, ports: Ports, identity: ClientIdentity) -> str:
    """A kubeconfig for `identity` on this cluster (files referenced by absolute path)."""
    pki = layout.pki
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "mlops-local",
                "cluster": {
                    "server": f"https://127.0.0.1:{ports.apiserver}",
                    "certificate-authority": str(pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": identity.common_name,
                "user": {
                    "client-certificate": str(pki / f"{identity.file_stem}.crt"),
                    "client-key": str(pki / f"{identity.file_stem}.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "mlops-local",
                "context": {"cluster": "mlops-local", "user": identity.common_name},
            }
        ],
        "current-context": "mlops-local",
    }
    return yaml.safe_dump(doc, sort_keys=False)


def etcd_command(etcd: Path, layout: ClusterLayout, ports: Ports) -> list[str]:
    """etcd on loopback with a throw-away data directory (fsync off: test data only)."""
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(etcd),
        "--name=local",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=local={peer}",
        "--listen-metrics-urls=",
        "--unsafe-no-fsync",
        "--quota-backend-bytes=2147483648",
        "--log-level=warn",
    ]


def apiserver_command(apiserver: Path, layout: ClusterLayout, ports: Ports) -> list[str]:
    """kube-apiserver with TLS, client-certificate auth, Node+RBAC and default admission."""
    pki = layout.pki
    return [
        str(apiserver),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={pki}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        # The defaults (PodSecurity, ServiceAccount, LimitRanger, ...) plus the node's fences.
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        # The reconciler refuses a loopback address for the `kubernetes` Service's endpoints.
        "--endpoint-reconciler-type=none",
        # Priority and fairness queues cost CPU that a 2-core laptop or CI runner lacks.
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_command(binary: Path, layout: ClusterLayout, ports: Ports) -> list[str]:
    """kube-controller-manager with every default controller and its own credentials."""
    pki = layout.pki
    return [
        str(binary),
        f"--kubeconfig={layout.kubeconfig_path(CONTROLLER_MANAGER)}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        f"--cert-dir={pki / 'controller-manager-serving'}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        # One ServiceAccount per controller, so RBAC applies to each as upstream intends.
        "--use-service-account-credentials=true",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--profiling=false",
        "--v=1",
    ]


def scheduler_command(binary: Path, layout: ClusterLayout, ports: Ports) -> list[str]:
    """kube-scheduler with its own credentials."""
    return [
        str(binary),
        f"--kubeconfig={layout.kubeconfig_path(SCHEDULER)}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        f"--cert-dir={layout.pki / 'scheduler-serving'}",
        "--profiling=false",
        "--v=1",
    ]
