"""The built images run: each entrypoint from the image's own root file system, read-only.

`make images` builds the three images with buildah (the session fixture rebuilds what
changed, from buildah's layer cache). Each test runs a command the way a container runtime
would, with nothing of this machine's Python: the image's root file system (a buildah
working container, mounted) is bind-mounted read-only, with a fresh /proc, the host's /dev,
a tmpfs at /tmp (the pods' scratch volume), and the process chrooted into it as the images'
user 65532 in a mount namespace of its own (`_run_in_image`). So `readOnlyRootFilesystem`
holds as in the chart's and the operator's pods.

Aspects: each image's ENTRYPOINT (as the image declares it) answers ``--help`` (the trainer,
which takes no flags, names its missing settings); the trainer image trains iris into a model
directory (parity checked, model card written) on a read-only root; the server image serves
that model and answers a KServe V2 inference with the right classes and a 4xx for a bad
request; the operator image carries no scikit-learn or onnxruntime, the server image no
scikit-learn, and neither the local cluster's cryptography; each image runs as 65532 with
the commit it was built from in MLOPS_BUILD_COMMIT.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_operator import __version__
from mlops_operator.buildinfo import BUILD_COMMIT_ENV
from mlops_operator.imagebuild.build import (
    BASE_REPOSITORY,
    IMAGES,
    BuiltImage,
    base_image,
    build_images,
)
from mlops_operator.localcluster.progress import StepFailed
from tests.ports import free_port

# One worker builds the images (with test_built_images.py): buildah builds of the same
# layers from several workers at once would only wait on each other's storage locks.
pytestmark = [pytest.mark.timeout(1800), pytest.mark.xdist_group("images")]

# The runtime side of a container, reduced to what these checks need; "$@" is the command.
_CONTAINER = r"""
set -eu
root=$1; work=$2; shift 2
mount --make-rprivate /
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o size=512m,mode=1777 tmpfs "$root/tmp"
mkdir "$root/tmp/work"
mount --bind "$work" "$root/tmp/work"
mount -o remount,bind,ro "$root"
exec chroot --userspec=65532:65532 "$root" "$@"
"""


LOCAL_REPO = "localhost/mlops-operator"
"""Where the images are built for the tests: the local node runs images named under
localhost/ from their own root file systems (tests/integration/localnode/test_built_images.py)."""


@functools.cache
def local_images() -> dict[str, BuiltImage]:
    """The three images, built (or found up to date in buildah's layer cache) once per worker
    process for this module and test_built_images.py: a rebuild of the three costs half a
    minute even when every layer is cached. A function, not a shared fixture: a fixture
    imported into another module is a fixture of its own there, with its own session cache."""
    if shutil.which("buildah") is None:
        pytest.fail("buildah is missing: `make images` installs it (and builds the images)")
    return {image.target: image for image in build_images(LOCAL_REPO, __version__)}


@pytest.fixture(scope="session")
def images() -> dict[str, BuiltImage]:
    """`local_images()`."""
    return local_images()


def _buildah(*args: str) -> str:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _revision() -> str:
    """This checkout's commit, with ``.dirty`` when tracked files differ from it."""
    git = ["git", "-C", str(Path(__file__).resolve().parents[3])]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    changed = subprocess.run([*git, "diff", "--quiet", "HEAD", "--"], check=False).returncode == 1
    return head.stdout.strip() + (".dirty" if changed else "")


def _image_ids() -> set[str]:
    return set(_buildah("images", "--all", "--quiet", "--no-trunc").split())


def test_a_failed_build_leaves_no_working_container() -> None:
    def containers() -> set[str]:
        return set(_buildah("containers", "--quiet", "--notruncate").split())

    base_image()  # made when missing
    (tagged, *_) = _buildah(
        "images", "--noheading", "--format", "{{.Name}}:{{.Tag}}",
        "--filter", f"reference={BASE_REPOSITORY}",
    ).split()  # fmt: skip
    before = containers()
    # The base by tag, not digest: the Dockerfile's first RUN step fails the build.
    with pytest.raises(StepFailed, match="must be pinned by digest"):
        build_images("localhost/mlops-operator-test", "failed", ["operator"], base=tagged)
    assert containers() - before == set()


def test_each_build_stamps_its_own_metadata_and_removes_the_image_it_replaces() -> None:
    """A rebuild from the layer cache still says which build it is, and takes no more space.

    buildah 1.28 reuses cached LABEL and ENV steps whatever the build arguments they expand:
    without the stamp, the second tag here would carry the first's version.
    """
    repo = "localhost/mlops-operator-test"
    try:
        first = build_images(repo, "stamp-a", ["operator"])[0]
        first_id = _buildah(
            "inspect", "--type", "image", "--format", "{{.FromImageID}}", first.name
        )
        second = build_images(repo, "stamp-b", ["operator"])[0]
        again = build_images(repo, "stamp-a", ["operator"])[0]
        for built, tag in ((second, "stamp-b"), (again, "stamp-a")):
            config = json.loads(_buildah("inspect", "--type", "image", built.name))["OCIv1"]
            assert config["config"]["Labels"]["org.opencontainers.image.version"] == tag
            assert (
                dict(e.split("=", 1) for e in config["config"]["Env"])[BUILD_COMMIT_ENV]
                == _revision()
            )
        # The image "stamp-a" named before the rebuild is gone, not left nameless on the disk.
        assert again.digest != first.digest
        assert first_id not in _image_ids()
    finally:
        for tag in ("stamp-a", "stamp-b"):
            subprocess.run(
                ["buildah", "rmi", f"{repo}/operator:{tag}"], capture_output=True, check=False
            )


class _Mounted:
    """An image's root file system, mounted through a buildah working container."""

    def __init__(self, image: BuiltImage) -> None:
        self.container = _buildah("from", "--pull-never", "--quiet", image.name)
        self.root = Path(_buildah("mount", self.container))
        inspected = json.loads(_buildah("inspect", "--type", "image", image.name))
        self.config: dict[str, Any] = inspected["OCIv1"]["config"]

    @property
    def entrypoint(self) -> list[str]:
        """The ENTRYPOINT, its program resolved on the image's PATH."""
        entry = list(self.config["Entrypoint"])
        for directory in self.environment()["PATH"].split(":"):
            if (self.root / directory.lstrip("/") / entry[0]).exists():
                return [f"{directory}/{entry[0]}", *entry[1:]]
        raise AssertionError(f"{entry[0]} is not on the image's PATH")

    def environment(self) -> dict[str, str]:
        """The image's ENV."""
        return dict(item.split("=", 1) for item in self.config.get("Env") or [])

    def close(self) -> None:
        subprocess.run(["buildah", "umount", self.container], capture_output=True, check=False)
        subprocess.run(["buildah", "rm", self.container], capture_output=True, check=False)


@pytest.fixture(scope="session")
def mounted(images: dict[str, BuiltImage]) -> Iterator[dict[str, _Mounted]]:
    """Each image's root file system, mounted for the session."""
    found = {target: _Mounted(image) for target, image in images.items()}
    yield found
    for each in found.values():
        each.close()


def _command(
    image: _Mounted, work: Path, command: list[str], env: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    work.chmod(0o777)
    return (
        ["unshare", "--mount", "--fork", "sh", "-c", _CONTAINER, "sh", str(image.root),
         str(work), *command],
        {**image.environment(), "HOME": "/tmp", **(env or {})},
    )  # fmt: skip


def _run_in_image(
    image: _Mounted, work: Path, command: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    args, environment = _command(image, work, command, env)
    return subprocess.run(
        args, env=environment, capture_output=True, text=True, timeout=600, check=False
    )


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("target", IMAGES)
def test_each_entrypoint_answers_help_from_its_own_root(
    mounted: dict[str, _Mounted], target: str, tmp_path: Path
) -> None:
    image = mounted[target]
    assert image.config["User"] == "65532:65532"
    # The commit lineage.codeVersion records for every model the image trains (buildinfo):
    # this checkout's, not an earlier build's.
    assert image.environment()[BUILD_COMMIT_ENV] == _revision()
    assert image.config["Labels"]["org.opencontainers.image.revision"] == _revision()
    done = _run_in_image(image, tmp_path, [*image.entrypoint, "--help"])
    assert "ModuleNotFoundError" not in done.stderr, done.stderr[-3000:]
    if target == "trainer":
        # The trainer takes no flags: it reads MLOPS_* and names the missing ones.
        assert done.returncode == 1, done.stderr[-3000:]
        assert "MLOPS_DATASET_URI: Field required" in done.stderr
    else:
        assert done.returncode == 0, done.stderr[-3000:]
        assert "usage:" in done.stdout


def test_each_image_carries_only_what_it_runs(mounted: dict[str, _Mounted]) -> None:
    def packages(target: str) -> set[str]:
        site = next((mounted[target].root / "opt" / "mlops" / "lib").glob("python3*"))
        return {p.name.split("-")[0].lower() for p in (site / "site-packages").glob("*.dist-info")}

    operator, trainer, server = packages("operator"), packages("trainer"), packages("server")
    assert "kopf" in operator
    assert not {"scikit_learn", "onnxruntime"} & operator
    assert {"scikit_learn", "onnxruntime", "s3fs", "aiohttp"} <= trainer
    assert "scikit_learn" not in server
    assert {"onnxruntime", "s3fs"} <= server
    assert not {"cryptography"} & (operator | trainer | server)
    for each in mounted.values():
        assert not (each.root / "opt" / "build").exists(), "a build tool stayed in the image"


def test_the_trainer_image_trains_and_the_server_image_serves(
    mounted: dict[str, _Mounted], tmp_path: Path
) -> None:
    trainer = mounted["trainer"]
    trained = _run_in_image(
        trainer,
        tmp_path,
        trainer.entrypoint,
        {
            "MLOPS_DATASET_URI": "sklearn://iris",
            "MLOPS_TARGET": "target",
            "MLOPS_ESTIMATOR": "LogisticRegression",
            "MLOPS_PARAMS": '{"max_iter": 500}',
            "MLOPS_MODEL_NAME": "iris",
            "MLOPS_SEED": "42",
            "MLOPS_OUTPUT_DIR": "/tmp/work/model",
            "MLOPS_TERMINATION_MESSAGE_PATH": "/tmp/work/termination-log",
        },
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = json.loads((tmp_path / "termination-log").read_text())
    assert result["ok"] is True
    assert result["metrics"]["accuracy"] >= 0.9
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "model-card.json",
        "model.onnx",
    ]
    # It ran on the image's Python and libraries, not this machine's.
    assert result["libraries"]["python"].startswith("3.11.")

    server = mounted["server"]
    port = free_port()
    args, environment = _command(
        server,
        tmp_path,
        [*server.entrypoint, "--model-dir", "/tmp/work/model", "--host", "127.0.0.1",
         "--port", str(port)],
    )  # fmt: skip
    # A session of its own: the stop signal goes to the whole group (unshare does not pass it on).
    process = subprocess.Popen(
        args,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        ready = False
        while time.monotonic() < deadline and process.poll() is None and not ready:
            try:
                url = f"http://127.0.0.1:{port}/v2/health/ready"
                with urllib.request.urlopen(url, timeout=2) as answer:
                    ready = answer.status == 200
            except OSError:
                time.sleep(0.2)
        assert ready, f"the server image never became ready: {process.poll()}"
        infer = f"http://127.0.0.1:{port}/v2/models/iris/infer"
        rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
        status, answer = _post(
            infer, {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                                "data": [v for row in rows for v in row]}]}
        )  # fmt: skip
        assert status == 200, answer
        labels = next(o for o in answer["outputs"] if o["name"] == "label")
        assert labels["data"] == [0, 2]
        status, answer = _post(infer, {"inputs": [{"name": "input", "shape": [1, 3],
                                                   "datatype": "FP32", "data": [1, 2, 3]}]})  # fmt: skip
        assert 400 <= status < 500, answer
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert "Traceback" not in output, output[-3000:]
    assert os.stat(tmp_path / "model" / "model.onnx").st_uid == 65532
