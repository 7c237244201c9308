"""images/Dockerfile (one target per image), checked without building it.

Aspects: it parses with BuildKit's own parser (PyPI `dockerfile`) and passes hadolint; it is
multi-stage and takes its base image only from the BASE_IMAGE build argument (no default, and
refused unless pinned by digest); each image's target runs as the numeric user and group the
operator's pods assume (`podcontract.IMAGE_USER`, 65532), carries
the OCI labels and an exec-form ENTRYPOINT, and copies an environment that installed exactly
its locked requirements file (hashes required, no dependency resolution) and the project's
wheel without dependencies; each requirements file pins exactly the closure of the image's
extras (the server's without scikit-learn, the operator's without onnxruntime, neither image
with the local cluster's cryptography), and is what `requirements/export.sh` makes from
uv.lock today; each entrypoint answers `--help` with only its extras' packages importable;
the root .dockerignore lets in exactly what the Dockerfile copies.
tests/integration/images/ builds the images and runs them from their own root file systems.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import dockerfile
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlops_operator.podcontract import IMAGE_USER

REPO = Path(__file__).resolve().parents[3]
# image -> (its extras, its entrypoint)
IMAGES = {
    "operator": (("operator",), ["mlops", "operator", "run"]),
    "trainer": (("train", "s3"), ["python", "-m", "mlops_operator.trainer"]),
    "server": (("serve", "s3"), ["mlops", "serve"]),
}
# What each image's program imports once it runs (the entrypoints import lazily).
PROGRAMS = {
    "operator": ["mlops_operator.runtime.main"],
    "trainer": ["mlops_operator.trainer.run"],
    "server": ["mlops_operator.serving.server", "mlops_operator.serving.app"],
}
OCI_LABELS = {"title", "description", "version", "revision", "created", "licenses"}
HADOLINT = Path(sys.executable).with_name("hadolint")


DOCKERFILE = REPO / "images" / "Dockerfile"


def _commands() -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(DOCKERFILE)))


def _stages() -> dict[str, tuple[str, list[dockerfile.Command]]]:
    """Stage name -> (what it is built FROM, its own commands)."""
    stages: dict[str, tuple[str, list[dockerfile.Command]]] = {}
    current: list[dockerfile.Command] = []
    for command in _commands():
        if command.cmd == "FROM":
            base, _, name = command.value
            current = []
            stages[name] = (base, current)
        else:
            current.append(command)
    return stages


def _image(target: str) -> list[dockerfile.Command]:
    """What the built image of `target` carries: its stage's commands and its parents'."""
    stages = _stages()
    chain: list[dockerfile.Command] = []
    while target in stages:
        base, own = stages[target]
        chain = own + chain
        target = base
    return chain


def _closure(*extras: str) -> set[str]:
    """The distributions `mlops-operator[extras]` needs, resolved against this environment."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    optional = pyproject["project"]["optional-dependencies"]
    pending = [
        Requirement(r)
        for r in (
            *pyproject["project"]["dependencies"],
            *(r for extra in extras for r in optional[extra]),
        )
    ]
    found: set[str] = set()
    while pending:
        requirement = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        version = metadata.version(name)  # PackageNotFoundError: the extra does not resolve
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{requirement} is not satisfied by the installed {name} {version}"
        )
        if name in found:
            continue
        found.add(name)
        for raw in metadata.requires(name) or []:
            nested = Requirement(raw)
            if nested.marker and not nested.marker.evaluate({"extra": ""}):
                continue
            pending.append(nested)
    return found


def test_parses_and_passes_hadolint() -> None:
    assert _commands()
    result = subprocess.run(
        [str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_from_a_digest_pinned_build_argument() -> None:
    commands = _commands()
    assert commands[0].cmd == "ARG"
    assert commands[0].value == ("BASE_IMAGE",)  # no default: the builder must pin one
    stages = _stages()
    assert set(IMAGES) <= set(stages)
    # Every stage starts from another stage or from the pinned base, nothing else.
    assert {base for base, _ in stages.values()} - set(stages) == {"${BASE_IMAGE}"}
    runs = " ".join(" ".join(c.value) for c in commands if c.cmd == "RUN")
    assert "*@sha256:*) ;;" in runs
    assert "must be pinned by digest" in runs


@pytest.mark.parametrize("image", IMAGES)
def test_runs_as_the_contracts_user_with_oci_labels_and_an_exec_entrypoint(image: str) -> None:
    final = _image(image)
    (user,) = [c.value for c in final if c.cmd == "USER"]
    assert user == (f"{IMAGE_USER}:{IMAGE_USER}",)
    labels = [c for c in final if c.cmd == "LABEL"]
    keys = {key for c in labels for key in c.value[::2]}
    assert {f"org.opencontainers.image.{label}" for label in OCI_LABELS} <= keys
    (entrypoint,) = [c for c in final if c.cmd == "ENTRYPOINT"]
    assert entrypoint.json
    assert list(entrypoint.value) == IMAGES[image][1]
    # The image copies its environment from a stage that installed its locked requirements
    # file and the project's wheel, nothing else.
    (source,) = [f.split("=", 1)[1] for c in final if c.cmd == "COPY" for f in c.flags]
    installs = [" ".join(c.value) for c in _stages()[source][1] if c.cmd == "RUN"]
    assert installs == [
        f"/opt/mlops/bin/pip install --require-hashes --no-deps -r requirements/{image}.txt",
        "/opt/mlops/bin/pip install --no-deps /wheels/*.whl",
    ]


def _locked(image: str) -> dict[str, str]:
    """The pins of requirements/<image>.txt: name -> version."""
    pins = {}
    for line in (REPO / "requirements" / f"{image}.txt").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.split(";")[0].strip().rstrip(" \\").partition("==")
            pins[canonicalize_name(name)] = version
    return pins


@pytest.mark.parametrize("image", IMAGES)
def test_the_lock_pins_exactly_the_closure_of_the_extras(image: str) -> None:
    closure = _closure(*IMAGES[image][0])
    assert "pydantic" in closure
    locked = _locked(image)
    assert closure <= set(locked), closure - set(locked)
    # The lock is universal: it also pins what only Windows needs (pandas' tzdata, colorama).
    assert set(locked) - closure <= {"colorama", "tzdata"}, set(locked) - closure
    for line in (REPO / "requirements" / f"{image}.txt").read_text().splitlines():
        assert not line.startswith("-e"), line
        assert "://" not in line.split("#")[0], line


def test_the_server_carries_no_scikit_learn_and_the_operator_no_onnxruntime() -> None:
    assert "scikit-learn" not in _locked("server")
    assert {"onnxruntime", "s3fs"} <= set(_locked("server"))
    assert not {"scikit-learn", "onnxruntime"} & set(_locked("operator"))
    assert {"scikit-learn", "skl2onnx", "onnxruntime", "s3fs", "aiohttp"} <= set(_locked("trainer"))
    # The local cluster's PKI and manifests are no workload's business.
    for image in IMAGES:
        assert "cryptography" not in _closure(*IMAGES[image][0]), image


def test_the_requirements_files_are_what_the_lock_exports(tmp_path: Path) -> None:
    uv = Path(sys.executable).with_name("uv")
    if not uv.exists():
        pytest.fail(f"{uv} is missing: `make venv` installs uv")
    result = subprocess.run(
        ["bash", str(REPO / "requirements" / "export.sh"), str(tmp_path)],
        env={"UV": str(uv), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for exported in sorted(tmp_path.glob("*.txt")):
        checked_in = REPO / "requirements" / exported.name
        assert checked_in.read_text() == exported.read_text(), (
            f"{checked_in} differs from uv.lock's export: run `make lock`"
        )


# Runs in a child on a sys.path that holds only the image's distributions, as in the image.
_PROGRAM = """
import importlib, runpy, sys
for module in sys.argv[1].split(","):
    importlib.import_module(module)
command = sys.argv[2:]
if command[0] == "python":
    sys.argv = [command[2], *command[3:]]
    runpy.run_module(command[2], run_name="__main__", alter_sys=True)
else:
    from mlops_operator.cli import main
    sys.exit(main(command[1:]))
"""


def _site_packages_of(distributions: set[str], into: Path) -> Path:
    """A directory linking only `distributions`' top-level files (and their metadata)."""
    into.mkdir()
    for name in distributions:
        dist = metadata.distribution(name)
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (into / top).exists() and top != "..":
                (into / top).symlink_to(source)
    return into


@pytest.mark.parametrize("image", IMAGES)
def test_the_entrypoint_starts_with_only_its_extra(image: str, tmp_path: Path) -> None:
    extras, entrypoint = IMAGES[image]
    site = _site_packages_of(_closure(*extras), tmp_path / "site-packages")
    result = subprocess.run(
        [sys.executable, "-S", "-c", _PROGRAM, ",".join(PROGRAMS[image]), *entrypoint, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": f"{REPO / 'operator'}:{site}", "PATH": "/usr/bin:/bin"},
    )
    assert "ModuleNotFoundError" not in result.stderr, result.stderr[-2000:]
    if image == "trainer":
        # The trainer takes no flags: it reads MLOPS_* and says which ones are missing.
        assert result.returncode == 1
        assert "invalid settings: MLOPS_DATASET_URI: Field required" in result.stderr
    else:
        assert result.returncode == 0, result.stderr[-2000:]
        assert "usage:" in result.stdout


def test_dockerignore_lets_in_exactly_what_the_dockerfiles_copy() -> None:
    copied = {
        source.rstrip("/")
        for c in _commands()
        if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags)
        for source in c.value[:-1]
    }
    lines = (REPO / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert lines[0] == "*" or "*" in lines[: lines.index(next(iter(sorted(lines))))] or "*" in lines
    assert allowed == {"pyproject.toml", "README.md", "operator", "requirements"}
    assert {c.split("/")[0] for c in copied} == allowed
