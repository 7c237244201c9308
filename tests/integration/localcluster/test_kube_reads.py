"""The suite's reads (`tests.kube.get_json`, `exists`, `gone`) answer as kubectl does, and
its namespaces go even when their operator is gone (`delete_namespace`).

The reads go to the API server in-process (one kept-alive connection per thread, not a
kubectl process per poll); every test that polls rests on them answering exactly as
``kubectl get -o json`` would, so each argument shape the suite uses is compared with
kubectl itself, on the same objects.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

import tests.kube
from mlops_operator.api.metadata import FINALIZER
from tests.integration.operator.conftest import REPO, crds  # noqa: F401  # a fixture
from tests.kube import delete_namespace, exists, get_json, gone, kubectl, wait_for

SHAPES = [
    ("one by name", ("-n", "{ns}", "configmap", "a")),
    ("one by type/name, flag last", ("cm/a", "-n", "{ns}")),
    ("several by name", ("configmaps", "b", "a", "--namespace={ns}")),
    ("a label selector", ("-n", "{ns}", "cm", "-l", "suite=reads")),
    ("a field selector", ("-n", "{ns}", "configmap", "--field-selector", "metadata.name=b")),
    ("a whole namespace", ("-n", "{ns}", "configmaps")),
    ("cluster-scoped, by name", ("namespace", "{ns}")),
    ("by group-qualified name", ("-n", "{ns}", "roles.rbac.authorization.k8s.io", "reader")),
    ("every namespace, selected", ("cm", "-A", "-l", "suite=reads,run={ns}")),
    ("with managed fields", ("-n", "{ns}", "configmap", "a", "--show-managed-fields")),
]


def _args(shape: tuple[str, ...], namespace: str) -> tuple[str, ...]:
    return tuple(arg.format(ns=namespace) for arg in shape)


def _kubectl_json(kubeconfig: Path, *args: str) -> Any:
    return json.loads(kubectl(kubeconfig, "get", *args, "-o", "json").stdout)


@pytest.fixture
def objects(kubeconfig: Path, namespace: str) -> str:
    """Two labelled ConfigMaps and a Role in `namespace`, and its own CA ConfigMap there."""
    for name in ("a", "b"):
        kubectl(
            kubeconfig, "-n", namespace, "create", "configmap", name, f"--from-literal=k={name}"
        )
        kubectl(kubeconfig, "-n", namespace, "label", "configmap", name,
                "suite=reads", f"run={namespace}")  # fmt: skip
    kubectl(kubeconfig, "-n", namespace, "create", "role", "reader", "--verb=get",
            "--resource=configmaps")  # fmt: skip
    # The controller adds this one a moment after the namespace: wait, so both reads see it.
    wait_for(lambda: exists(kubeconfig, "-n", namespace, "cm", "kube-root-ca.crt"),
             what="the namespace's CA ConfigMap")  # fmt: skip
    return namespace


@pytest.mark.parametrize("shape", [s for _, s in SHAPES], ids=[i for i, _ in SHAPES])
def test_a_read_answers_as_kubectl_without_running_it(
    kubeconfig: Path, objects: str, shape: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = _args(shape, objects)
    expected = _kubectl_json(kubeconfig, *args)

    def refused(*_: Any, **__: Any) -> Any:
        raise AssertionError("the read ran kubectl")

    monkeypatch.setattr(tests.kube, "kubectl", refused)
    assert get_json(kubeconfig, *args) == expected
    assert exists(kubeconfig, *args)


def test_a_missing_object_fails_with_kubectls_sentence(kubeconfig: Path, objects: str) -> None:
    args = ("-n", objects, "configmap", "a", "nope")
    refused = kubectl(kubeconfig, "get", *args, "-o", "json", check=False)
    assert refused.returncode != 0
    sentence = next(line for line in refused.stderr.splitlines() if "NotFound" in line)
    with pytest.raises(AssertionError) as failure:
        get_json(kubeconfig, *args)
    assert sentence in str(failure.value)
    assert not exists(kubeconfig, *args)
    assert not exists(kubeconfig, "-n", objects, "role", "nope")
    assert not gone(kubeconfig, *args)  # "a" is there
    assert gone(kubeconfig, "-n", objects, "role", "nope")
    assert gone(kubeconfig, "-n", objects, "configmap", "nope", "nada")


def test_what_the_reader_does_not_take_goes_to_kubectl(kubeconfig: Path, objects: str) -> None:
    # Two kinds at once is kubectl's to read; the answer is still kubectl's own.
    args = ("-n", objects, "configmaps,roles", "-l", "suite=reads")
    assert get_json(kubeconfig, *args) == _kubectl_json(kubeconfig, *args)
    assert exists(kubeconfig, *args)


@pytest.mark.usefixtures("crds")
def test_a_namespace_whose_operator_is_gone_is_deleted_all_the_same(kubeconfig: Path) -> None:
    # What a stopped operator leaves: an object still carrying its finalizer.
    name = f"reads-{uuid.uuid4().hex[:8]}"
    kubectl(kubeconfig, "create", "namespace", name)
    held = yaml.safe_load((REPO / "manifests" / "examples" / "modelversion.yaml").read_text())
    held["metadata"] |= {"namespace": name, "finalizers": [FINALIZER]}
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(held))
    delete_namespace(kubeconfig, name)
    wait_for(lambda: gone(kubeconfig, "namespace", name), timeout=60,
             what="the namespace to go")  # fmt: skip
