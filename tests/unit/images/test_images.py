"""images/Dockerfile (one target per image), checked without a Docker engine.

Aspects: it parses with BuildKit's own parser (PyPI `dockerfile`) and passes hadolint; it is
multi-stage and takes its base image only from the BASE_IMAGE build argument (no default, and
refused unless pinned by digest); each image's target runs as the numeric user 65532, carries
the OCI labels and an exec-form ENTRYPOINT, and copies an environment that installed only its
extra; the extra each installs resolves within this environment to versions that satisfy every
requirement, the server's without scikit-learn and the operator's without onnxruntime; each
entrypoint answers `--help` with only its extra's packages importable; the root .dockerignore
lets in exactly what the Dockerfile copies.
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

REPO = Path(__file__).resolve().parents[3]
IMAGES = {
    "operator": ("operator", ["mlops", "operator", "run"]),
    "trainer": ("train", ["python", "-m", "mlops_operator.trainer"]),
    "server": ("serve", ["mlops", "serve"]),
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


def _closure(extra: str) -> set[str]:
    """The distributions `mlops-operator[extra]` needs, resolved against this environment."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pending = [
        Requirement(r)
        for r in (
            *pyproject["project"]["dependencies"],
            *pyproject["project"]["optional-dependencies"][extra],
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
def test_runs_as_65532_with_oci_labels_and_an_exec_entrypoint(image: str) -> None:
    final = _image(image)
    (user,) = [c.value for c in final if c.cmd == "USER"]
    assert user == ("65532:65532",)
    labels = [c for c in final if c.cmd == "LABEL"]
    keys = {key for c in labels for key in c.value[::2]}
    assert {f"org.opencontainers.image.{label}" for label in OCI_LABELS} <= keys
    (entrypoint,) = [c for c in final if c.cmd == "ENTRYPOINT"]
    assert entrypoint.json
    assert list(entrypoint.value) == IMAGES[image][1]
    # The image copies its environment from a stage that installed its extra and no other.
    (source,) = [f.split("=", 1)[1] for c in final if c.cmd == "COPY" for f in c.flags]
    installs = [" ".join(c.value) for c in _stages()[source][1] if c.cmd == "RUN"]
    assert installs == [f'/opt/mlops/bin/pip install ".[{IMAGES[image][0]}]"']


@pytest.mark.parametrize("image", IMAGES)
def test_the_extra_resolves(image: str) -> None:
    closure = _closure(IMAGES[image][0])
    assert "pydantic" in closure


def test_the_server_carries_no_scikit_learn_and_the_operator_no_onnxruntime() -> None:
    assert "scikit-learn" not in _closure("serve")
    assert "onnxruntime" in _closure("serve")
    assert not {"scikit-learn", "onnxruntime"} & _closure("operator")
    assert {"scikit-learn", "skl2onnx", "onnxruntime"} <= _closure("train")


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
    extra, entrypoint = IMAGES[image]
    site = _site_packages_of(_closure(extra), tmp_path / "site-packages")
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
    assert allowed == copied == {"pyproject.toml", "README.md", "operator"}
