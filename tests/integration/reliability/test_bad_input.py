"""Bad objects of every kind at scale: generated specs against the real API server and the operator.

One Hypothesis strategy serves the four kinds. It starts from each kind's
example and sets one to three spec fields, picked from the kind's pydantic
model (the schema source, nested models included) plus fields no kind has
(``serviceAccountName``, ``hostPath`` …), to values of the wrong type, out of
range, hostile strings (paths, import names, URIs) or values valid elsewhere.
Each document is created with strict field validation. Every one must either
be refused by the API server with a message naming a ``spec`` field, or be
accepted and then get, from the running operator, its top condition with one
of the kind's expected reasons — never silence, which is what an endless retry
looks like. No handler may fail with an unexpected exception, and the operator
must still be running at the end, without having restarted.

Accepted objects do no expensive work: the namespace's ResourceQuota admits no
pod, TrainingJobs are pinned to ``suspend: true``, and nothing the
ModelDeployments and DriftPolicies point at exists (each kind gets a namespace
of its own), so they settle on ``NoVersion`` and ``TargetNotFound``/``Suspended``.

``MLOPS_BAD_INPUT_EXAMPLES`` sets the examples per kind (default
`DEFAULT_EXAMPLES`); each run prints its figures.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import ssl
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from mlops_operator.api import DriftPolicy, ModelDeployment, ModelVersion, TrainingJob
from mlops_operator.api.resource import CustomResource
from mlops_operator.k8s import Connection
from mlops_operator.k8s.kubeconfig import Overrides, load
from tests.integration.operator.conftest import REPO, RunningOperator
from tests.integration.trainingjob.conftest import items, training_job
from tests.kube import kubectl, wait_for

pytestmark = pytest.mark.reliability

DEFAULT_EXAMPLES = {
    "TrainingJob": 200,
    "ModelVersion": 120,
    "ModelDeployment": 120,
    "DriftPolicy": 120,
}
CONDITION_TIMEOUT = 180
EXAMPLES_DIR = REPO / "manifests" / "examples"

# Fields no kind has: each must be refused, never reach a pod.
FOREIGN = ("serviceAccountName", "volumes", "hostPath", "command", "securityContext")
HOSTILE = (
    "../../etc/passwd",
    "/etc/passwd",
    "file:///etc/passwd",
    "os.system",
    "__import__('os')",
    "sklearn.linear_model.LogisticRegression",
    "subprocess.Popen",
    "hostPath",
    "default",
    "kube-system",
    "sklearn://iris",
    "sklearn://../../x",
    "s3://bucket/../../x",
    "LogisticRegression",
    "RandomForestRegressor",
    "median",
    "most_frequent",
    "Canary",
    "Manual",
    "@daily",
    "0s",
    "1s",
    "99999h",
    "x" * 300,
    "",
    " ",
    "ünïcødé",
    "1e999",
)


@dataclass(frozen=True)
class Kind:
    """What the generator needs to know about one kind."""

    model: type[CustomResource]
    example: Callable[[str], dict[str, Any]]
    condition: str
    reasons: frozenset[str]
    # Spec fields forced after the edits so that an accepted object stays cheap.
    pinned: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The kind's name, e.g. ``TrainingJob``."""
        return self.model.crd.kind

    @property
    def examples(self) -> int:
        """How many documents to generate (``MLOPS_BAD_INPUT_EXAMPLES`` overrides the default)."""
        return int(os.environ.get("MLOPS_BAD_INPUT_EXAMPLES") or DEFAULT_EXAMPLES[self.name])


def _example(path: str) -> Callable[[str], dict[str, Any]]:
    def load(namespace: str) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load((EXAMPLES_DIR / path).read_text())
        document["metadata"] = {"namespace": namespace}
        return document

    return load


KINDS = (
    Kind(
        TrainingJob,
        lambda namespace: training_job(namespace, "placeholder"),
        "Succeeded",
        frozenset({"Suspended", "InvalidSpec"}),
        pinned={"suspend": True},
    ),
    Kind(
        ModelVersion,
        _example("modelversion.yaml"),
        "Ready",
        frozenset({"Validating", "InvalidSpec"}),
    ),
    Kind(
        ModelDeployment,
        _example("modeldeployment.yaml"),
        "Ready",
        frozenset({"NoVersion", "InvalidSpec"}),
    ),
    Kind(
        DriftPolicy,
        _example("driftpolicy.yaml"),
        "Ready",
        frozenset({"Suspended", "TargetNotFound", "InvalidSpec", "PrometheusNotAllowed"}),
    ),
)


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation is, or is optionally (``X | None``, ``Annotated``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    elif get_origin(annotation) in (Union, types.UnionType) or hasattr(annotation, "__metadata__"):
        for argument in get_args(annotation):
            yield from _models(argument)


def spec_paths(model: type[BaseModel], prefix: str = "", depth: int = 3) -> list[str]:
    """Every field of `model` as a dotted wire path, descending `depth` levels of nested models."""
    paths = []
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        paths.append(path)
        if depth > 1:
            for nested in _models(info.annotation):
                paths += spec_paths(nested, path + ".", depth - 1)
    return paths


def _leaves(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value)
    else:
        yield node


# Values valid somewhere in some example: plausible in the wrong place, so more documents
# get past the API server to the operator.
PLAUSIBLE = sorted(
    {repr(v): v for kind in KINDS for v in _leaves(kind.example("x")["spec"])}.values(), key=repr
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(HOSTILE),
    st.sampled_from(PLAUSIBLE),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=8), SCALARS, max_size=3),
)


def _like(value: Any) -> st.SearchStrategy[Any]:
    """Values of the type `value` has (edge cases included): they pass the schema's type check."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(min_value=-(2**31), max_value=2**40) | st.integers(0, 10)
    if isinstance(value, float):
        finite = st.floats(allow_nan=False, allow_infinity=False)
        return finite | st.floats(0, 1) | st.integers(-10, 10)
    if isinstance(value, str):
        return st.text(max_size=40) | st.sampled_from(HOSTILE) | st.sampled_from(PLAUSIBLE)
    if isinstance(value, list) and value:
        return st.lists(_like(value[0]), max_size=3)
    return VALUES


def _at(document: dict[str, Any], path: str) -> Any:
    node: Any = document["spec"]
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def edits(kind: Kind) -> st.SearchStrategy[dict[str, Any]]:
    """One or two spec fields of `kind` (or foreign ones) mapped to generated values.

    A field the example sets gets, three times in four, a value of the type it has there:
    those pass the schema's type check, so many reach the operator.
    """
    (spec,) = _models(kind.model.model_fields["spec"].annotation)
    fields = [p for p in spec_paths(spec) if p not in kind.pinned]
    base = kind.example("x")

    def value(path: str) -> st.SearchStrategy[Any]:
        current = _at(base, path)
        if current is None:
            return VALUES
        return st.integers(0, 3).flatmap(lambda i: VALUES if i == 0 else _like(current))

    chosen = st.lists(st.sampled_from([*fields, *FOREIGN]), min_size=1, max_size=2, unique=True)
    return chosen.flatmap(lambda paths: st.fixed_dictionaries({p: value(p) for p in paths}))


def edited(base: dict[str, Any], changes: dict[str, Any], pinned: dict[str, Any]) -> dict[str, Any]:
    """`base` with each dotted spec path of `changes`, then of `pinned`, set to its value."""
    document = copy.deepcopy(base)
    for path, value in [*changes.items(), *pinned.items()]:
        node = document["spec"]
        *parents, last = path.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[last] = value
    return document


class Creator:
    """POSTs objects straight to the API server (a kubectl process per object is 5-10x slower)."""

    def __init__(self, kubeconfig: Path) -> None:
        connection = Connection.from_target(load(Overrides(kubeconfig=kubeconfig)))
        authorization = asyncio.run(connection.authorization())
        self.server = connection.server
        self.headers = {**dict(authorization.headers), "Content-Type": "application/json"}
        self.context: ssl.SSLContext = connection.ssl_context(authorization.identity)

    def create(self, document: dict[str, Any], plural: str) -> str | None:
        """Create `document` with strict field validation: None, or the API server's refusal."""
        namespace = document["metadata"]["namespace"]
        url = (
            f"{self.server}/apis/mlops.dev/v1alpha1/namespaces/{namespace}/{plural}"
            "?fieldValidation=Strict"
        )
        request = urllib.request.Request(
            url, data=json.dumps(document).encode(), headers=self.headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context):
                return None
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        # A 5xx would be the API server failing on input, not refusing it.
        assert 400 <= status < 500, f"{status} for {document}: {body!r}"
        message: str = json.loads(body)["message"]
        return message


def _names(message: str, path: str) -> bool:
    """Whether the API server's `message` names the spec field at dotted `path`.

    By its path or the path of an object on it (an edit of ``a.b.c`` may create ``a.b``,
    which is then what is missing a field), or by its own name: a CEL rule reports on
    the object it sits on and says which field in its message (so does the API server
    when a value of the wrong type reaches a rule before the type check, e.g. a list
    for a ``format: duration`` string).
    """
    keys = path.split(".")
    prefixes = (".".join(keys[:n]) for n in range(len(keys), 0, -1))
    return any(f"spec.{p}" in message for p in prefixes) or keys[-1] in message


def _reasons(kubeconfig: Path, namespace: str, kind: Kind) -> dict[str, str]:
    """Object name -> the reason of its top condition, for those that have one."""
    found = {}
    for obj in items(kubeconfig, namespace, kind.model.crd.plural):
        for condition in (obj.get("status") or {}).get("conditions") or []:
            if condition["type"] == kind.condition and condition.get("reason"):
                found[obj["metadata"]["name"]] = condition["reason"]
    return found


def _unexpected_failures(log: Path) -> list[str]:
    """Log lines of handlers that raised something other than `kopf.PermanentError`."""
    return [line for line in log.read_text().splitlines() if "failed with an exception" in line]


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_generated_objects_are_refused_by_name_or_handled_with_a_reason(
    kind: Kind,
    operator: RunningOperator,
    kubeconfig: Path,
    namespace: str,
) -> None:
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"}}
    kubectl(
        kubeconfig,
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=json.dumps(quota | {"spec": {"hard": {"pods": "0"}}}),
    )
    creator = Creator(kubeconfig)
    base = kind.example(namespace)
    accepted: list[str] = []
    refused: list[str] = []

    @settings(
        max_examples=kind.examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(changes=edits(kind))
    def submit(changes: dict[str, Any]) -> None:
        name = f"gen-{len(accepted) + len(refused)}"
        document = edited(base, changes, kind.pinned)
        document["metadata"]["name"] = name
        error = creator.create(document, kind.model.crd.plural)
        if error is None:
            accepted.append(name)
            return
        refused.append(name)
        assert any(_names(error, path) for path in changes), (changes, error)

    submit()

    assert operator.process.poll() is None, "the operator exited"
    reasons = wait_for(
        lambda: (
            found if set(found := _reasons(kubeconfig, namespace, kind)) >= set(accepted) else None
        ),
        timeout=CONDITION_TIMEOUT,
        what=f"a reasoned {kind.condition} condition on each of {len(accepted)} accepted"
        f" {kind.name}s",
    )
    assert set(reasons.values()) <= kind.reasons, reasons
    assert operator.process.poll() is None, "the operator exited"
    assert not _unexpected_failures(operator.log), _unexpected_failures(operator.log)[:5]
    print(
        f"{kind.name}: generated {len(accepted) + len(refused)}, refused {len(refused)} by the"
        f" API server, accepted {len(accepted)}"
        f" ({ {r: list(reasons.values()).count(r) for r in sorted(set(reasons.values()))} })"
    )
