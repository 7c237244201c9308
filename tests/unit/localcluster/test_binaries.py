"""The wrapper go.mod is derived from upstream's own go.mod, not hard-coded."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_operator.localcluster import binaries

UPSTREAM = """module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/cri-streaming => ./staging/src/k8s.io/cri-streaming
\tk8s.io/api => ./staging/src/k8s.io/api
\tgithub.com/other/mod => github.com/other/mod v1.2.3
)
"""


def test_staging_modules_are_read_from_the_replace_block() -> None:
    assert binaries.staging_modules(UPSTREAM) == ["k8s.io/api", "k8s.io/cri-streaming"]


def test_wrapper_keeps_upstream_go_and_godebug_lines(tmp_path: Path) -> None:
    binaries._wrapper(tmp_path, "wrap", UPSTREAM, {"k8s.io/api": "v0.36.3"})
    text = (tmp_path / "go.mod").read_text()
    assert "\ngo 1.26.0\n" in text
    assert "\ngodebug default=go1.26\n" in text
    assert "\tk8s.io/api => k8s.io/api v0.36.3\n" in text


def test_godebug_defaults_to_the_go_line_when_upstream_has_none() -> None:
    assert binaries._go_directives("module x\n\ngo 1.25.3\n") == ("1.25.3", "go1.25")


def test_a_go_mod_without_go_line_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no `go` directive"):
        binaries._go_directives("module x\n")


def test_version_ldflags_set_both_version_packages() -> None:
    flags = binaries._version_ldflags("v1.36.3")
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion=v1.36.3" in flags
        assert f"-X {pkg}.gitMinor=36" in flags


def test_cache_root_honours_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "c"))
    assert binaries.cache_root() == tmp_path / "c"
    monkeypatch.delenv("MLOPS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert binaries.cache_root() == tmp_path / "x" / "mlops-operator"
    assert binaries.KUBERNETES.directory == tmp_path / "x/mlops-operator/bin/kubernetes-v1.36.3"


def test_a_component_without_its_stamp_is_not_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path))
    directory = binaries.ETCD.directory
    directory.mkdir(parents=True)
    for name in binaries.ETCD.binaries:
        (directory / name).write_text("")
    assert not binaries.ETCD.is_built(), "an interrupted build must not count as cached"
    (directory / ".complete").write_text("v\n")
    assert binaries.ETCD.is_built()
