"""The first process of every container on the local node.

The node starts it as root inside the pod's network namespace (``ip netns
exec``, which also gives it a private mount namespace and the pod's
``/etc/resolv.conf``). It then does what a container runtime does before
handing over: bind-mounts the pod's volumes at their mount paths, keeps the
project's Python environment reachable at its own path (for an unprivileged user,
and whatever the volumes cover), drops to the
pod's user and groups, and ``exec``s the container's command. Its only input
is a JSON spec file, written by the node.

For a built image (``rootfs`` in the spec, `mlops_operator.localcluster.images`) it goes
one step further, as a runtime does: the image's files are bind-mounted at a root of the
container's own, with a fresh /proc, a /dev of its own (a tmpfs with the usual device nodes),
the pod's /etc/resolv.conf and /etc/hosts and the volumes under it; the root is made
read-only when the container asks for ``readOnlyRootFilesystem``, and the process is
chrooted into it. The host's Python and files are then out of reach.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]

_MS_RDONLY = 1
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384

# Outside anything a pod mounts or a mask covers: /run is a tmpfs on any Linux.
_STAGING = Path("/run/mlops-local-node/stage")

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    result = _libc.mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} -> {target}: {os.strerror(errno)}")


def _bind(source: str, target: str, read_only: bool) -> None:
    src = Path(source)
    dst = Path(target)
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            dst.touch()
    _mount(source, target, None, _MS_BIND | _MS_REC)
    if read_only:
        _mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY)


def _stage(keep: list[str]) -> list[tuple[Path, str]]:
    """Bind each path the container needs somewhere no volume or mask can cover."""
    staged = []
    for index, path in enumerate(sorted(keep, key=len)):
        stage = _STAGING / str(index)
        stage.mkdir(parents=True, exist_ok=True)
        _mount(path, str(stage), None, _MS_BIND | _MS_REC)
        staged.append((stage, path))
    return staged


def _restore(staged: list[tuple[Path, str]]) -> None:
    """Put the needed paths back where they were, over any volume or mask that hid them.

    A volume mounted at /tmp hides a checkout under /tmp; a tmpfs over /root (0700,
    which an unprivileged pod user could not enter) hides a Python under /root.
    Parents are restored before children, so nothing restored hides another.
    """
    for stage, path in staged:
        Path(path).mkdir(parents=True, exist_ok=True)
        _mount(str(stage), path, None, _MS_BIND | _MS_REC)


_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_MAX_LINKS = 40


def _in_root(root: Path, target: str) -> Path:
    """`target` inside `root`, its symbolic links resolved as they would be inside it.

    Images link paths across their tree (Debian's /var/run -> /run): resolved on the host, an
    absolute link would lead out of the image (a volume bound onto the host's /run instead of
    the container's). Links are followed against `root`, and never above it.
    """
    parts = [p for p in target.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink():
            links += 1
            if links > _MAX_LINKS:
                raise OSError(f"too many symbolic links under {target} in the image")
            link = os.readlink(candidate)
            if link.startswith("/"):
                resolved = []
            parts = [p for p in link.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def _enter_image(spec: dict[str, Any]) -> None:
    """Make the image's files the container's root (see the module docstring), then chroot."""
    root = Path(spec["rootDir"])
    root.mkdir(parents=True, exist_ok=True)
    # The mount points below are made in the node's working container of the image (its
    # merged directory), never in the image's layers, and before the root turns read-only.
    _mount(spec["rootfs"], str(root), None, _MS_BIND | _MS_REC)
    (root / "proc").mkdir(exist_ok=True)
    _mount("proc", str(root / "proc"), "proc", 0)
    (root / "dev").mkdir(exist_ok=True)
    _mount("tmpfs", str(root / "dev"), "tmpfs", 0, "mode=0755,size=64k")
    for device in _DEVICES:
        (root / "dev" / device).touch()
        _mount(f"/dev/{device}", str(root / "dev" / device), None, _MS_BIND)
    (root / "dev" / "shm").mkdir()
    _mount("tmpfs", str(root / "dev" / "shm"), "tmpfs", 0, "mode=1777,size=64m")
    # `ip netns exec` put the pod's resolv.conf and hosts over the host's: carry them in.
    for name in ("resolv.conf", "hosts"):
        _bind(f"/etc/{name}", str(_in_root(root, f"/etc/{name}")), read_only=True)
    for mount in spec.get("mounts", []):
        target = _in_root(root, mount["target"])
        _bind(mount["source"], str(target), bool(mount.get("readOnly")))
    if spec.get("readOnlyRoot"):
        _mount(None, str(root), None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY)
    os.chroot(root)


def _drop_privileges(spec: dict[str, Any]) -> None:
    uid, gid = spec.get("uid"), spec.get("gid")
    groups = [int(g) for g in spec.get("groups", [])]
    if uid is None:
        return
    os.setgroups(groups)
    os.setgid(int(gid if gid is not None else uid))
    os.setuid(int(uid))


def main(argv: list[str] | None = None) -> None:
    """Prepare the mount namespace and identity, then become the container's command."""
    args = argv if argv is not None else sys.argv[1:]
    spec: dict[str, Any] = json.loads(Path(args[0]).read_text())
    if spec.get("rootfs"):
        _enter_image(spec)
    else:
        environment = spec["environment"]
        staged = _stage(environment["keep"])
        # Volumes before masks: their sources may sit under a directory a mask then hides.
        for mount in spec.get("mounts", []):
            _bind(mount["source"], mount["target"], bool(mount.get("readOnly")))
        for directory in environment["masks"]:
            # A tmpfs inside this mount namespace: chmod would change the host.
            _mount("tmpfs", directory, "tmpfs", 0, "mode=0755")
        _restore(staged)
    _drop_privileges(spec)
    os.chdir(spec.get("workingDir") or "/")
    argv_ = [str(a) for a in spec["argv"]]
    env = {str(k): str(v) for k, v in spec["env"].items()}
    try:
        os.execvpe(argv_[0], argv_, env)
    except OSError as exc:
        # Exit codes as a container runtime reports them: 127 not found, 126 not executable.
        message = f"cannot run {argv_[0]!r}: {exc.strerror}"
        Path(spec["terminationLog"]).write_text(message)
        print(message, file=sys.stderr)
        sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)


if __name__ == "__main__":
    main()
