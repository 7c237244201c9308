"""The node side of the local cluster, as pure functions: command lines and configs.

The node agent, kube-proxy, CoreDNS and Prometheus; and the objects they need
in the API (RBAC for their identities, the DNS Service, the Endpoints through
which pods reach the API server, the default StorageClass).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from mlops_operator.localcluster import network
from mlops_operator.localcluster.controlplane import (
    COREDNS,
    DNS_SERVICE_IP,
    KUBE_PROXY,
    NODE_NAME,
    PROVISIONER,
    SERVICE_CIDR,
    ClusterLayout,
    Ports,
)
from mlops_operator.localcluster.node import APISERVER_PROXY_PORT
from mlops_operator.localcluster.node import PROVISIONER as PROVISIONER_NAME

__all__ = [
    "PROMETHEUS_SCRAPE_INTERVAL",
    "bootstrap_manifest",
    "coredns_command",
    "corefile",
    "kube_proxy_command",
    "node_command",
    "prometheus_command",
    "prometheus_config",
]

# Short, so drift and canary analysis see new traffic within seconds.
PROMETHEUS_SCRAPE_INTERVAL = "5s"


def node_command(layout: ClusterLayout, ports: Ports, kubelet_version: str) -> list[str]:
    """The node agent (runs as root: it creates network namespaces and mounts)."""
    return [
        sys.executable,
        "-m",
        "mlops_operator.localcluster.node",
        f"--name={NODE_NAME}",
        f"--pki={layout.pki}",
        f"--apiserver-port={ports.apiserver}",
        f"--data-root={layout.data_root}",
        f"--service-cidr={SERVICE_CIDR}",
        f"--health-port={ports.node_health}",
        f"--kubelet-version={kubelet_version}",
    ]


def kube_proxy_command(binary: Path, layout: ClusterLayout, ports: Ports) -> list[str]:
    """kube-proxy in nftables mode; masquerading all Service traffic.

    Pods sit on one bridge without br_netfilter, so a reply from a pod to a pod
    would bypass the host's conntrack; masquerading makes replies return
    through the host, where the Service's DNAT is undone.
    """
    return [
        str(binary),
        f"--kubeconfig={layout.kubeconfig_path(KUBE_PROXY)}",
        f"--hostname-override={NODE_NAME}",
        "--proxy-mode=nftables",
        f"--cluster-cidr={network.POD_CIDR}",
        "--masquerade-all",
        f"--healthz-bind-address=127.0.0.1:{ports.kube_proxy_health}",
        f"--metrics-bind-address=127.0.0.1:{ports.kube_proxy_metrics}",
        "--bind-address=127.0.0.1",
        # Leave the host's conntrack sysctls alone.
        "--conntrack-max-per-core=0",
        "--v=1",
    ]


def corefile(layout: ClusterLayout, ports: Ports) -> str:
    """CoreDNS serving cluster.local from this API server, on the bridge only.

    No `forward` plugin: pods have no route off the machine, so names outside
    the cluster are answered NXDOMAIN rather than sent anywhere.
    """
    return (
        ".:53 {\n"
        f"    bind {network.GATEWAY}\n"
        "    errors\n"
        f"    health 127.0.0.1:{ports.coredns_health}\n"
        f"    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n"
        f"        kubeconfig {layout.kubeconfig_path(COREDNS)} mlops-local\n"
        "        pods insecure\n"
        "        fallthrough in-addr.arpa ip6.arpa\n"
        "    }\n"
        "    cache 5\n"
        "}\n"
    )


def coredns_command(binary: Path, layout: ClusterLayout) -> list[str]:
    """CoreDNS with the Corefile written beside the cluster's state."""
    return [str(binary), "-conf", str(layout.root / "Corefile")]


def prometheus_config(ports: Ports) -> str:
    """Prometheus scraping the pods annotated ``prometheus.io/scrape: "true"``.

    Debian's Prometheus is built without the Kubernetes service discovery, so
    the node, which watches every pod through the API server, serves the
    targets over HTTP service discovery (``/sd/pods``), honouring the same
    ``prometheus.io/port`` and ``prometheus.io/path`` annotations.
    """
    config = {
        "global": {
            "scrape_interval": PROMETHEUS_SCRAPE_INTERVAL,
            "evaluation_interval": PROMETHEUS_SCRAPE_INTERVAL,
        },
        "scrape_configs": [
            {
                "job_name": "kubernetes-pods",
                "http_sd_configs": [
                    {
                        "url": f"http://127.0.0.1:{ports.node_health}/sd/pods",
                        "refresh_interval": PROMETHEUS_SCRAPE_INTERVAL,
                    }
                ],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def prometheus_command(binary: str, layout: ClusterLayout, ports: Ports) -> list[str]:
    """Debian's Prometheus on loopback, with a throw-away TSDB."""
    return [
        binary,
        f"--config.file={layout.root / 'prometheus.yml'}",
        f"--storage.tsdb.path={layout.prometheus_data}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address=127.0.0.1:{ports.prometheus}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]


def _binding(name: str, user: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    ]


def _slice(name: str, namespace: str, service: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "mlops-local-cluster",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [network.GATEWAY], "conditions": {"ready": True}}],
        "ports": ports,
    }


def bootstrap_manifest() -> str:
    """Objects the node side needs, applied once the API server is up (idempotent)."""
    read = ["get", "list", "watch"]
    docs: list[dict[str, Any]] = []
    docs += _binding(
        "mlops:local-provisioner",
        PROVISIONER.common_name,
        [
            {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": read},
            {
                "apiGroups": [""],
                "resources": ["persistentvolumes"],
                "verbs": [*read, "create", "delete"],
            },
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": read},
        ],
    )
    docs += _binding(
        "mlops:coredns",
        COREDNS.common_name,
        [
            {
                "apiGroups": [""],
                "resources": ["services", "pods", "namespaces"],
                "verbs": ["list", "watch"],
            },
            {
                "apiGroups": ["discovery.k8s.io"],
                "resources": ["endpointslices"],
                "verbs": ["list", "watch"],
            },
        ],
    )
    docs.append(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": "local",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": PROVISIONER_NAME,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }
    )
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kube-dns",
                "namespace": "kube-system",
                "labels": {"k8s-app": "kube-dns"},
            },
            "spec": {
                "clusterIP": DNS_SERVICE_IP,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        }
    )
    docs.append(
        _slice(
            "kube-dns-local",
            "kube-system",
            "kube-dns",
            [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            ],
        )
    )
    # The API server listens on loopback; the node forwards the bridge's port to it.
    docs.append(
        _slice(
            "kubernetes-local",
            "default",
            "kubernetes",
            [{"name": "https", "port": APISERVER_PROXY_PORT, "protocol": "TCP"}],
        )
    )
    return yaml.safe_dump_all(docs, sort_keys=False)
