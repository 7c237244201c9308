"""A file rewritten while others read it is, to each reader, the old one or the new one whole."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mlops_operator.localcluster.files import write_atomically


def test_a_reader_that_opened_the_old_file_reads_it_whole_and_the_next_reads_the_new(
    tmp_path: Path,
) -> None:
    path = tmp_path / "admin.kubeconfig"
    write_atomically(path, "old: config\n")
    with path.open() as reading:
        # Rewritten in place (truncate, then write), the open file would read "" or the new text.
        write_atomically(path, "new: config, longer\n")
        assert reading.read() == "old: config\n"
    assert path.read_text() == "new: config, longer\n"
    assert list(tmp_path.iterdir()) == [path]  # nothing half-written is left beside it


def test_the_file_has_its_mode_from_the_start(tmp_path: Path) -> None:
    secret = tmp_path / "object-store.json"
    write_atomically(secret, "{}")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    public = tmp_path / "timings.json"
    write_atomically(public, "{}", 0o644)
    assert stat.S_IMODE(public.stat().st_mode) == 0o644


def test_a_partial_file_left_by_a_killed_writer_does_not_stop_the_next(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    (tmp_path / f".cluster.json.{os.getpid()}").write_text("half")
    write_atomically(path, "{}")
    assert path.read_text() == "{}"
    assert list(tmp_path.iterdir()) == [path]
