"""Pod networking for the local node: a bridge, one network namespace per pod.

Every pod gets its own network namespace with an ``eth0`` on the cluster
bridge and an address from the pod CIDR, so each pod can listen on its own
port 8080 and its IP is a valid Endpoint (the API server refuses loopback
addresses there).

Containment: pods get routes to the pod and Service CIDRs only, no default
route; only packets arriving on the bridge are forwarded (per-interface
forwarding, the host's ``ip_forward`` stays as it was), and an nftables rule
drops anything the bridge would forward elsewhere. Traffic that starts in a
pod therefore never leaves the machine.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BRIDGE",
    "GATEWAY",
    "POD_CIDR",
    "PodNetwork",
    "ensure_bridge",
    "remove_bridge",
    "remove_pod_namespaces",
]

BRIDGE = "mlops0"
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")
GATEWAY = "10.244.0.1"
_NFT_TABLE = "mlops_local"
_NETNS_PREFIX = "mlops-"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def _nft(script: str) -> None:
    proc = subprocess.run(
        ["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nft failed: {proc.stderr.strip()}")


def ensure_bridge() -> None:
    """Create the bridge, its address and the containment rules (idempotent)."""
    if _ip("link", "show", BRIDGE, check=False).returncode != 0:
        _ip("link", "add", BRIDGE, "type", "bridge")
    if GATEWAY not in _ip("-4", "addr", "show", "dev", BRIDGE).stdout:
        _ip("addr", "add", f"{GATEWAY}/{POD_CIDR.prefixlen}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")
    Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/forwarding").write_text("1\n")
    # Replace the table wholesale so a changed rule set never stacks on an old one.
    _nft(
        f"table inet {_NFT_TABLE}\ndelete table inet {_NFT_TABLE}\n"
        f"table inet {_NFT_TABLE} {{\n"
        "  chain forward {\n"
        "    type filter hook forward priority -10; policy accept;\n"
        f'    iifname "{BRIDGE}" oifname != "{BRIDGE}" counter drop\n'
        "  }\n"
        "}\n"
    )


def remove_pod_namespaces() -> None:
    """Remove the namespaces of the bridge's pods, with their files under /etc/netns.

    Namespace names (and /etc/netns) are machine-wide while the bridge is not: only the
    pods whose host-side veth sits in this network namespace are ours. Another cluster,
    started in a namespace of its own, keeps its pods running.
    """
    for line in _ip("-o", "link", "show", "type", "veth").stdout.splitlines():
        veth = line.split(":", 2)[1].strip().split("@", 1)[0]
        if veth.startswith("vm"):
            netns = f"{_NETNS_PREFIX}{veth[2:]}"
            _ip("netns", "delete", netns, check=False)
            shutil.rmtree(Path("/etc/netns") / netns, ignore_errors=True)


def remove_bridge() -> None:
    """Remove the namespaces of the bridge's pods, the bridge and the rules."""
    remove_pod_namespaces()
    _ip("link", "delete", BRIDGE, check=False)
    subprocess.run(["nft", "delete", "table", "inet", _NFT_TABLE], capture_output=True, check=False)


@dataclass(frozen=True)
class PodNetwork:
    """The network namespace and address of one pod."""

    netns: str
    ip: str
    host_veth: str

    @staticmethod
    def names(pod_uid: str) -> tuple[str, str]:
        """Deterministic namespace and host-side interface names for a pod."""
        short = pod_uid.replace("-", "")[:10]
        return f"{_NETNS_PREFIX}{short}", f"vm{short}"

    @classmethod
    def create(cls, pod_uid: str, ipam: Ipam, service_cidr: str) -> PodNetwork:
        """Create (or re-create) the pod's namespace, veth pair and address."""
        netns, veth = cls.names(pod_uid)
        ip = ipam.allocate(pod_uid)
        _ip("netns", "delete", netns, check=False)
        _ip("netns", "add", netns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("link", "set", veth, "master", BRIDGE, "up")
        inside: Sequence[Sequence[str]] = (
            ("link", "set", "lo", "up"),
            ("addr", "add", f"{ip}/{POD_CIDR.prefixlen}", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
            ("route", "add", service_cidr, "via", GATEWAY),
        )
        for args in inside:
            _ip("-n", netns, *args)
        return cls(netns, ip, veth)

    @classmethod
    def delete(cls, pod_uid: str, ipam: Ipam) -> None:
        """Remove the pod's namespace (its veth goes with it) and free its address."""
        netns, veth = cls.names(pod_uid)
        _ip("netns", "delete", netns, check=False)
        _ip("link", "delete", veth, check=False)
        ipam.release(pod_uid)


@dataclass
class _Leases:
    next_offset: int
    by_owner: dict[str, str]


class Ipam:
    """Pod address allocation, persisted so a restarted node keeps its leases.

    Addresses are handed out round-robin rather than lowest-free, so a freed
    address is not reused at once: a stale Endpoint never points at a new pod.
    """

    def __init__(self, state_file: Path) -> None:
        self._file = state_file

    @contextmanager
    def _state(self) -> Iterator[_Leases]:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        with open(self._file.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                raw = json.loads(self._file.read_text())
                state = _Leases(
                    int(raw["next"]), {str(k): str(v) for k, v in raw["leases"].items()}
                )
            except (FileNotFoundError, ValueError, KeyError):
                state = _Leases(1, {})
            yield state
            self._file.write_text(json.dumps({"next": state.next_offset, "leases": state.by_owner}))

    def allocate(self, owner: str) -> str:
        """The address leased to `owner`, allocating one if it has none."""
        with self._state() as state:
            if owner in state.by_owner:
                return state.by_owner[owner]
            used = set(state.by_owner.values()) | {GATEWAY}
            # Offsets 0 and the last are the network and broadcast addresses.
            usable = POD_CIDR.num_addresses - 2
            offset = state.next_offset
            for _ in range(usable):
                offset = offset % usable + 1
                candidate = str(POD_CIDR.network_address + offset)
                if candidate not in used:
                    state.by_owner[owner] = candidate
                    state.next_offset = offset
                    return candidate
        raise RuntimeError(f"pod CIDR {POD_CIDR} is exhausted")

    def release(self, owner: str) -> None:
        """Free the address leased to `owner` (if any)."""
        with self._state() as state:
            state.by_owner.pop(owner, None)

    def leases(self) -> dict[str, str]:
        """Owner -> address, for every current lease."""
        with self._state() as state:
            return dict(state.by_owner)
