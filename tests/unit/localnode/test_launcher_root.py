"""Mount targets inside a built image's root: its symbolic links followed inside it.

Aspects: a path through an absolute link (Debian's /var/run -> /run) lands under the image's
/run, not the host's; relative links and `..` resolve within the image and never climb above
its root; a missing tail is kept as it is (the launcher creates it); a link loop is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_operator.localcluster.launcher import _in_root


def test_absolute_links_resolve_inside_the_image(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "var").mkdir()
    os.symlink("/run", tmp_path / "var" / "run")
    target = _in_root(tmp_path, "/var/run/secrets/kubernetes.io/serviceaccount")
    assert target == tmp_path / "run" / "secrets" / "kubernetes.io" / "serviceaccount"


def test_relative_links_and_dotdot_never_leave_the_root(tmp_path: Path) -> None:
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    os.symlink("usr/lib", tmp_path / "lib")
    os.symlink("../../../../etc", tmp_path / "usr" / "escape")
    assert _in_root(tmp_path, "/lib/x") == tmp_path / "usr" / "lib" / "x"
    assert _in_root(tmp_path, "/../../etc/passwd") == tmp_path / "etc" / "passwd"
    assert _in_root(tmp_path, "/usr/escape/shadow") == tmp_path / "etc" / "shadow"


def test_a_link_loop_is_refused(tmp_path: Path) -> None:
    os.symlink("/b", tmp_path / "a")
    os.symlink("/a", tmp_path / "b")
    with pytest.raises(OSError, match="too many symbolic links"):
        _in_root(tmp_path, "/a/x")
