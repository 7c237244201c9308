"""codeVersion: the package version plus the commit, from the image or from the checkout.

Aspects: a commit baked into the image wins, marked dirty when the image was built from a
changed tree; in a git checkout (this repository) it is
HEAD, marked dirty exactly when tracked files differ; without either it is the package
version alone (tests/unit/trainer/test_code_version.py: the trainer records it).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_operator import __version__, buildinfo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    buildinfo.code_version.cache_clear()
    yield
    buildinfo.code_version.cache_clear()


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(ROOT), *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("suffix", ["", ".dirty"])
def test_a_commit_baked_into_the_image_wins(monkeypatch: pytest.MonkeyPatch, suffix: str) -> None:
    # An image built from a tree with changes says so (`mlops images build`).
    baked = "0123456789abcdef0123456789abcdef01234567" + suffix
    monkeypatch.setenv(buildinfo.BUILD_COMMIT_ENV, baked)
    assert buildinfo.code_version() == f"{__version__}+g0123456789ab{suffix}"


def test_in_a_checkout_it_is_head_and_says_when_it_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(buildinfo.BUILD_COMMIT_ENV, raising=False)
    head = _git("rev-parse", "HEAD")
    if head.returncode != 0:
        pytest.fail(f"the tests run from a git checkout: {head.stderr}")
    dirty = _git("diff", "--quiet", "HEAD", "--").returncode == 1
    expected = f"{__version__}+g{head.stdout.strip()[:12]}" + (".dirty" if dirty else "")
    assert buildinfo.code_version() == expected
    assert buildinfo.checkout_revision() == head.stdout.strip() + (".dirty" if dirty else "")


def test_without_a_commit_it_is_the_package_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(buildinfo.BUILD_COMMIT_ENV, raising=False)
    monkeypatch.setattr(buildinfo, "_SOURCE_ROOT", tmp_path)
    assert buildinfo.code_version() == __version__
