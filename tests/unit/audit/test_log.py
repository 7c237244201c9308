"""The audit log file: each entry once, in decision order, never rewritten; the appender program.

Aspects: ids are content hashes; a batch appends only what follows the newest
entry already present; a retried or stale batch adds nothing; racing appenders
(real processes) write each entry once; a torn last line is kept and ended; the
``append``/``show`` program reads its entries and store from the environment and
refuses keys outside ``audit/`` and stores that are neither a directory nor an object store.
On an object store (fsspec's in-memory one here; the real S3 server in
tests/e2e/test_object_store.py) the log is one object per entry: the same rules, each object
written once, read back in decision order.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops_operator.audit import AuditEntry, append_entries, log_key, make_entry, read_entries
from mlops_operator.audit.objects import append_objects, objects_prefix, read_objects
from mlops_operator.storage import ArtifactStore

T0 = datetime(2025, 3, 4, 14, 0, tzinfo=UTC)


def _entry(n: int, **overrides: object) -> AuditEntry:
    fields: dict[str, object] = {
        "kind": "ModelDeployment",
        "namespace": "ns",
        "name": "iris",
        "uid": "u-1",
        "time": T0 + timedelta(minutes=n),
        "action": "Promote",
        "version": n,
        "reason": "Promoted",
        "message": f"version {n} promoted",
        "evidence": {"errorRate": 0.01 * n},
    }
    return make_entry(**(fields | overrides))


def _ids(path: Path) -> list[str]:
    return [entry.id for entry in read_entries(path)[0]]


def test_the_id_is_a_stable_content_hash() -> None:
    assert _entry(1).id == _entry(1).id
    assert _entry(1).id != _entry(1, actor="alice").id
    assert _entry(1).id != _entry(1, uid="u-2").id


def test_a_line_is_one_json_object_with_its_id(tmp_path: Path) -> None:
    line = _entry(1).line()
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    payload = json.loads(line)
    assert payload["id"] == _entry(1).id
    assert payload["evidence"] == {"errorRate": 0.01}


def test_batches_append_only_what_follows_the_newest_entry_present(tmp_path: Path) -> None:
    path = tmp_path / log_key("ns", "modeldeployments", "iris")
    history = [_entry(n) for n in range(1, 5)]
    assert append_entries(path, history[:2]) == 2
    assert append_entries(path, history[:2]) == 0  # a retried Job
    assert append_entries(path, history[:1]) == 0  # an older Job running late
    assert append_entries(path, history) == 2
    assert _ids(path) == [e.id for e in history]


def test_an_older_entry_missing_from_the_file_is_not_appended_after_a_newer_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    history = [_entry(n) for n in range(1, 4)]
    append_entries(path, [history[0], history[2]])
    assert append_entries(path, history) == 0
    assert _ids(path) == [history[0].id, history[2].id]


def test_the_file_only_grows(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    append_entries(path, [_entry(1)])
    before = path.read_bytes()
    append_entries(path, [_entry(1), _entry(2)])
    assert path.read_bytes().startswith(before)


def test_a_torn_last_line_is_ended_and_skipped_by_readers(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    append_entries(path, [_entry(1)])
    with path.open("ab") as file:
        file.write(b'{"id":"torn')
    assert append_entries(path, [_entry(1), _entry(2)]) == 1
    entries, bad = read_entries(path)
    assert [e.version for e in entries] == [1, 2]
    assert bad == 1


def _race(path: str, count: int) -> None:
    append_entries(Path(path), [_entry(n) for n in range(1, count + 1)])


def test_racing_appenders_write_each_entry_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_race, args=(str(path), n)) for n in (3, 6, 4, 6, 5, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    entries, bad = read_entries(path)
    assert [e.version for e in entries] == [1, 2, 3, 4, 5, 6]
    assert bad == 0


def _program(tmp_path: Path, *args: str, entries: list[AuditEntry] | None = None,
             store: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = os.environ | {"MLOPS_STORE_URI": store or f"file://{tmp_path}"}
    if entries is not None:
        env["MLOPS_AUDIT_ENTRIES"] = json.dumps([e.model_dump(mode="json") for e in entries])
    return subprocess.run(
        [sys.executable, "-m", "mlops_operator.audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_program_appends_from_the_environment_and_shows_the_log(tmp_path: Path) -> None:
    key = log_key("ns", "modeldeployments", "iris")
    history = [_entry(1), _entry(2)]
    done = _program(tmp_path, "append", "--key", key, entries=history)
    assert done.returncode == 0, done.stderr
    assert "appended 2 of 2" in done.stdout
    again = _program(tmp_path, "append", "--key", key, entries=history)
    assert "appended 0 of 2" in again.stdout
    shown = _program(tmp_path, "show", "--key", key)
    assert [json.loads(line)["version"] for line in shown.stdout.splitlines()] == [1, 2]


@pytest.mark.parametrize(
    ("key", "store", "expected"),
    [
        ("audit/../../etc/x.jsonl", None, "expected audit/"),
        ("models/x.jsonl", None, "expected audit/"),
        ("audit/ns/modeldeployments/x.jsonl", "bucket/root", "expected a file system store"),
    ],
)
def test_the_program_refuses_bad_keys_and_stores(
    tmp_path: Path, key: str, store: str | None, expected: str
) -> None:
    done = _program(tmp_path, "append", "--key", key, entries=[_entry(1)], store=store)
    assert done.returncode == 2
    assert expected in done.stderr


@pytest.mark.parametrize("part", ["", "a/b", "..", "."])
def test_log_keys_refuse_segments_that_are_not_names(part: str) -> None:
    with pytest.raises(ValueError, match="path segment"):
        log_key("ns", "modeldeployments", part)


def test_an_object_store_log_is_one_object_per_entry_in_decision_order() -> None:
    store = ArtifactStore(f"memory://audit-test-{os.getpid()}-{id(object())}")
    key = log_key("ns", "modeldeployments", "iris")
    history = [_entry(1), _entry(2), _entry(3)]
    assert append_objects(store, key, history[:2]) == 2
    assert append_objects(store, key, history[:2]) == 0  # a retried batch
    assert append_objects(store, key, history) == 1
    names = store.keys(objects_prefix(key))
    assert len(names) == 3
    assert all(name.startswith("audit/ns/modeldeployments/iris/2025") for name in names)
    first = store.read_bytes(names[0])
    assert append_objects(store, key, history) == 0
    assert store.read_bytes(names[0]) == first  # never rewritten
    entries, bad = read_objects(store, key)
    assert [e.version for e in entries] == [1, 2, 3]
    assert bad == 0
    # An older entry missing from the log is not added after a newer one.
    assert append_objects(store, key, [_entry(0, message="late"), *history]) == 0
    assert [e.version for e in read_objects(store, key)[0]] == [1, 2, 3]
