"""The local node runs the built images themselves: their own root file systems, read-only.

The images are built under ``localhost/mlops-operator`` (`make images
IMAGE_REPO=localhost/mlops-operator`; the fixture rebuilds what changed from buildah's layer
cache) and the chart is installed with ``images.registry=localhost``: the operator pod, and the
trainer and validator pods it creates, run the images' ENTRYPOINTs on the images' Python and
libraries, chrooted into the images' files, not this checkout's environment.

Aspects: the operator trains the iris TrainingJob into a Validated ModelVersion, every pod
from a built image; the operator's process has the image's root (not the host's), runs the
image's Python, sees its root file system mounted read-only (the chart's
``readOnlyRootFilesystem``) and cannot write to it, and runs as 65532.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.imagebuild.build import BuiltImage
from tests.integration.chart.conftest import CHART, Helm, helm, helm_binary
from tests.integration.chart.test_install import _trained, release, watched
from tests.integration.images.test_image_run import local_images
from tests.integration.operator.conftest import crds
from tests.kube import get_json, kubectl, wait_for
from tests.unit.chart.rendered import REPO

__all__ = ["crds", "helm", "helm_binary", "release", "watched"]  # fixtures used here

# Uses the images tests/integration/images builds, on the worker that builds them.
pytestmark = [pytest.mark.timeout(1800), pytest.mark.xdist_group("images")]


@pytest.fixture(scope="module")
def images() -> dict[str, BuiltImage]:
    """The images under localhost/ (the chart below is installed with
    ``images.registry=localhost``), built once per worker with tests/integration/images'."""
    return local_images()


def _process_of(pod: str) -> int:
    """The pid of the container process of `pod` (its environment names the pod)."""
    needle = f"POD_ID={pod}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError(f"no process of pod {pod} on this machine")


def _root_mount(pid: int) -> list[str]:
    """The mount options of the process's root file system, as it sees them."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields[5].split(",")
    raise AssertionError(f"process {pid} sees no root mount")


def _operator_pod(kubeconfig: Path, namespace: str) -> dict[str, Any] | None:
    pods = get_json(
        kubeconfig, "pods", "-n", namespace, "-l", "app.kubernetes.io/component=operator"
    )["items"]
    ready = [
        p
        for p in pods
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
    ]
    return ready[0] if ready else None


def test_the_node_runs_the_built_images_read_only(
    images: dict[str, BuiltImage],
    helm: Helm,
    kubeconfig: Path,
    namespace: str,
    watched: str,
    release: str,
) -> None:
    helm(
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set",
        "crds.enabled=false",
        "--set",
        "images.registry=localhost",
        "--set",
        f"operator.watchNamespaces={{{watched}}}",
        "--set",
        "operator.logFormat=text",
        "--wait",
        "--timeout",
        "4m",
        kubeconfig=kubeconfig,
    )
    pod = wait_for(
        lambda: _operator_pod(kubeconfig, namespace), timeout=240, what="a Ready operator pod"
    )
    assert pod["spec"]["containers"][0]["image"] == images["operator"].name

    pid = _process_of(pod["metadata"]["name"])
    # /proc/<pid>/root is the process's own root, seen from here through its mount namespace.
    root = Path(f"/proc/{pid}/root")
    # Compared by identity, not by readlink: the link's text is "/" whenever the container's
    # root was mounted in its own mount namespace out of this one's sight (as it is here).
    assert not root.samefile("/"), "the operator runs on the host's root file system"
    assert (root / "opt" / "mlops" / "bin" / "mlops").is_file()
    assert not (root / "work").exists(), "the host's files are visible in the container"
    # The image's Debian Python runs it, not this machine's.
    assert (root / "usr" / "bin" / "python3.11").samefile(f"/proc/{pid}/exe")
    assert "ro" in _root_mount(pid)
    status = Path(f"/proc/{pid}/status").read_text()
    assert "\nUid:\t65532\t" in status

    doc = yaml.safe_load(
        (REPO / "manifests" / "examples" / "iris" / "trainingjob.yaml").read_text()
    )
    doc["metadata"]["namespace"] = watched
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(doc))
    job = wait_for(
        lambda: _trained(kubeconfig, watched, doc["metadata"]["name"]),
        timeout=600,
        what="the built images to train the TrainingJob",
    )
    version = job["status"]["modelVersion"]
    validated = wait_for(
        lambda: (
            (v := get_json(kubeconfig, "modelversion", version, "-n", watched))
            .get("status", {})
            .get("phase")
            in ("Validated", "Rejected")
            and v
        ),
        timeout=300,
        what="the validator (trainer image) to judge the ModelVersion",
    )
    assert validated["status"]["phase"] == "Validated", validated["status"]
    assert validated["spec"]["lineage"]["image"] == images["trainer"].name
    ran = {
        c["image"]
        for p in get_json(kubeconfig, "pods", "-n", watched)["items"]
        for c in p["spec"]["containers"]
    }
    assert ran == {images["trainer"].name}, ran
