"""Kopf's last-handled state as a digest: what Kopf reads back in each case, and what it writes.

Aspects: a new object reads as unknown (Kopf's create); an unchanged spec reads as the
object itself (no diff); a changed spec reads as nothing known of the spec (a diff on
``spec``: the update handler); labels and annotations are not part of it; the stored
value is one short digest, whatever the spec's size; an object handled by Kopf's JSON
copy is judged against the copy and migrates without a spec change.
"""

from __future__ import annotations

import json
from typing import Any

import kopf

from mlops_operator.handlers.bookkeeping import SpecDigestStorage

STORAGE = SpecDigestStorage(prefix="mlops.dev")


def body(spec: dict[str, Any], **annotations: str) -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "mlops.dev/v1alpha1",
            "kind": "DriftPolicy",
            "metadata": {
                "name": "p",
                "namespace": "ml",
                "labels": {"a": "1"},
                "annotations": annotations,
            },
            "spec": spec,
            "status": {"observedGeneration": 1},
        }
    )


def stored(obj: kopf.Body) -> dict[str, Any]:
    """What Kopf would patch after handling `obj`."""
    patch = kopf.Patch()
    STORAGE.store(body=obj, patch=patch, essence=STORAGE.build(body=obj))
    annotations: dict[str, Any] = dict(patch.get("metadata", {}).get("annotations", {}))
    return annotations


def handled(spec: dict[str, Any], **annotations: str) -> kopf.Body:
    """The object as stored after Kopf handled `spec`, with `annotations` changed since."""
    written = {k: v for k, v in stored(body(spec)).items() if v is not None}
    return body(spec, **written, **annotations)


def test_a_new_object_reads_as_unknown() -> None:
    assert STORAGE.fetch(body=body({"x": 1})) is None


def test_an_unchanged_spec_reads_as_the_object_itself() -> None:
    obj = handled({"deployment": "iris", "interval": "10s"})
    assert STORAGE.fetch(body=obj) == STORAGE.build(body=obj)


def test_a_changed_spec_reads_as_nothing_known_of_the_spec() -> None:
    before = handled({"deployment": "iris", "interval": "10s"})
    after = body({"deployment": "iris", "interval": "20s"}, **before.metadata.annotations)
    old = STORAGE.fetch(body=after)
    assert old == {}
    assert "spec" in STORAGE.build(body=after)  # so Kopf's diff names the spec


def test_labels_and_annotations_are_not_compared() -> None:
    obj = handled({"deployment": "iris"}, note="changed by a person")
    assert STORAGE.fetch(body=obj) == STORAGE.build(body=obj)
    assert "metadata" not in STORAGE.build(body=obj)


def test_the_stored_value_is_a_short_digest_whatever_the_size_of_the_spec() -> None:
    big = {"retrain": {"template": {f"field{i}": "x" * 100 for i in range(100)}}}
    written = stored(body(big))
    assert set(written) == {"mlops.dev/last-handled-spec", "mlops.dev/kopf-managed"}
    digest = written["mlops.dev/last-handled-spec"]
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64


def test_kopfs_json_copy_is_read_once_then_replaced_by_the_digest() -> None:
    spec = {"deployment": "iris"}
    copy = json.dumps({"spec": spec, "metadata": {"labels": {"a": "1"}}})
    legacy = body(spec, **{"mlops.dev/last-handled-configuration": copy})
    old = STORAGE.fetch(body=legacy)
    new = STORAGE.build(body=legacy)
    # The same spec (so no spec handler runs) but not equal, so Kopf stores the digest.
    assert old is not None
    assert old["spec"] == new["spec"]
    assert old != new
    written = stored(legacy)
    assert written["mlops.dev/last-handled-configuration"] is None  # removed
    assert written["mlops.dev/last-handled-spec"].startswith("sha256:")


def test_a_changed_spec_under_kopfs_json_copy_is_a_change() -> None:
    copy = json.dumps({"spec": {"deployment": "old"}})
    legacy = body({"deployment": "new"}, **{"mlops.dev/last-handled-configuration": copy})
    old = STORAGE.fetch(body=legacy)
    assert old is not None
    assert old["spec"] != STORAGE.build(body=legacy)["spec"]
