"""The controller kit, without a cluster: every handler follows it, and its pure parts.

Aspects: no module of the package writes status, posts an Event or reads the
clock for a handler outside the kit (an AST walk, shown to catch each kind of
write on a sample); a model status is the whole status and a mapping only its
fields; a status already stored is an empty patch; a stored status that does not
parse starts over; an Event's message is cut to Kopf's bound; a status decided
from a copy cannot be combined with a cached copy.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import kopf
import pytest
from kopf._core.engines import posting

from mlops_operator.api.conditions import Reason
from mlops_operator.api.events import MAX_EVENT_MESSAGE, Event
from mlops_operator.api.trainingjob import TrainingJobPhase, TrainingJobStatus
from mlops_operator.handlers import kit
from mlops_operator.handlers.kit import post, status_patch, stored_status, write_status
from mlops_operator.k8s import KubeClient

pytestmark = pytest.mark.unit

PACKAGE = Path(kit.__file__).resolve().parents[1]
KIT = PACKAGE / "handlers" / "kit.py"
# The API client defines the status write; the local cluster's node writes its pods'
# status as a kubelet does (a system of its own, not the operator).
EXEMPT = (PACKAGE / "k8s", PACKAGE / "localcluster")
# Where handlers run: they tell the time through the kit too.
HANDLER_PACKAGES = (PACKAGE / "handlers", PACKAGE / "drift")


def _writes(source: str, *, handler: bool = True) -> list[str]:
    """Where `source` writes status, posts an Event, or (in a handler) reads the clock."""
    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "patch_status":
                found.append(f"{where}: patch_status")
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "event"
                and isinstance(func.value, ast.Name)
                and func.value.id == "kopf"
            ):
                found.append(f"{where}: kopf.event")
            if handler and isinstance(func, ast.Attribute) and func.attr in ("now", "utcnow"):
                if isinstance(func.value, ast.Name) and func.value.id == "datetime":
                    found.append(f"{where}: datetime.{func.attr}")
                if isinstance(func.value, ast.Attribute) and func.value.attr == "datetime":
                    found.append(f"{where}: datetime.{func.attr}")
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg == "subresource" and not (
                    isinstance(value, ast.Constant) and value.value != "status"
                ):
                    found.append(f"{where}: a patch of a subresource that may be status")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.endswith("/status"):
                found.append(f"{where}: a path to the status subresource")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "status"
            and isinstance(node.value, ast.Name)
            and node.value.id == "patch"
        ):
            found.append(f"{where}: Kopf's patch.status")
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "patch"
            and isinstance(node.slice, ast.Constant)
            and node.slice.value == "status"
        ):
            found.append(f"{where}: Kopf's patch['status']")
    return found


def test_no_status_write_event_or_clock_outside_the_kit() -> None:
    strays = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == KIT or any(path.is_relative_to(exempt) for exempt in EXEMPT):
            continue
        handler = any(path.is_relative_to(p) for p in HANDLER_PACKAGES)
        for found in _writes(path.read_text(), handler=handler):
            strays.append(f"{path.relative_to(PACKAGE)}: {found}")
    assert strays == []


@pytest.mark.parametrize(
    "source",
    [
        "await kube.patch_status('v1', 'X', 'n', 'ns', {})",
        "await kube.patch('v1', 'X', 'n', 'ns', {'status': {}}, subresource='status')",
        "await kube.patch('v1', 'X', 'n', 'ns', {'status': {}}, subresource=which)",
        "await api.merge_patch(path + '/status', body)",
        "patch.status.update({'phase': 'Running'})",
        "patch.status['phase'] = 'Running'",
        "patch['status'] = {}",
        "kopf.event(body, type='Normal', reason='R', message='m')",
        "at = datetime.now(UTC)",
        "at = datetime.datetime.now(datetime.UTC)",
    ],
)
def test_the_walk_catches_each_way_around_the_kit(source: str) -> None:
    assert _writes(source), f"not caught: {source}"


def test_the_walk_leaves_other_calls_alone() -> None:
    ok = "await kube.patch('apps/v1', 'Deployment', 'n', 'ns', {'spec': {}})\nx = body.status"
    assert _writes(ok) == []
    assert _writes("at = datetime.now(UTC)", handler=False) == []


def test_a_model_is_the_whole_status() -> None:
    before = {"phase": "Running", "jobName": "t-train", "foreign": 1}
    after = TrainingJobStatus(phase=TrainingJobPhase.FAILED)
    patch = status_patch(before, after)
    assert patch["phase"] == "Failed"
    assert patch["jobName"] is None
    assert patch["foreign"] is None


def test_a_mapping_sets_only_its_fields_and_none_clears() -> None:
    before = {"phase": "Running", "jobName": "t-train", "message": "m"}
    patch = status_patch(before, {"phase": "Running", "message": None, "modelVersion": None})
    assert patch == {"message": None}


def test_a_status_already_stored_is_an_empty_patch() -> None:
    stored = TrainingJobStatus(phase=TrainingJobPhase.RUNNING, job_name="t-train")
    before = stored.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert status_patch(before, stored) == {}


def test_a_stored_status_that_does_not_parse_starts_over() -> None:
    assert stored_status({"status": {"phase": "Exploded"}}, TrainingJobStatus) == (
        TrainingJobStatus()
    )
    body = {"status": {"phase": "Running", "jobName": "t-train"}}
    assert stored_status(body, TrainingJobStatus).job_name == "t-train"


async def test_an_event_is_queued_typed_and_cut_to_kopfs_bound() -> None:
    # Kopf's own queue, as its poster task reads it in the operator.
    queue: asyncio.Queue[posting.K8sEvent] = asyncio.Queue()
    posting.settings_var.set(kopf.OperatorSettings())
    posting.event_queue_loop_var.set(asyncio.get_running_loop())
    posting.event_queue_var.set(queue)
    obj = {"apiVersion": "mlops.dev/v1alpha1", "kind": "TrainingJob", "metadata": {"name": "t"}}
    post(obj, Event.warning(Reason.NAME_CONFLICT, "x" * 5000))
    event = queue.get_nowait()
    assert (event.ref["name"], event.type, event.reason) == ("t", "Warning", "NameConflict")
    assert event.message == "x" * MAX_EVENT_MESSAGE


async def test_a_cached_copy_needs_a_status_derived_from_the_stored_object() -> None:
    obj = {"apiVersion": "v", "kind": "K", "metadata": {"name": "n", "uid": "u"}}
    with pytest.raises(ValueError, match="cached"):
        await write_status(KubeClient(), obj, {"phase": "Running"}, cached=True)
