"""`mlops reproduce MODELVERSION`: train again from a ModelVersion's lineage and compare.

A ModelVersion's lineage is the whole recipe (dataset, target, features,
estimator and parameters, seed, split, folds, preprocessing), so anyone with
the data can re-create the model. This command reads the ModelVersion through
the Kubernetes API (the kubeconfig, as kubectl does), rebuilds the TrainingJob
spec from the lineage, renders the trainer settings exactly as the controller
does (`mlops_operator.resources.trainingjob.trainer_settings`), trains locally,
and compares the data version, the ONNX sha256 and every metric. Exit code 0:
everything matches; 1: something differs (each difference is listed); 2: the
version cannot be reproduced here (no lineage, unreachable data, bad flags).

Data that cannot be read again as it was (a payload log, which rolls over; a file on
a claim) is read from its **snapshot**: the trainer stores every source's canonical
table in the artifact store under its sha256 (``datasets/<sha256>/data.parquet``),
and the lineage records that sha256. ``--store`` names the store; without it, a
store on a claim backed by a host path (the local cluster's) is found through the
API. A combined dataset (several sources, each sampled with the seed) is rebuilt
source by source, so its data version matches too.

The data version and the ONNX sha256 must be equal. Metrics must agree to
within 1e-9 (relative, or absolute near zero): training is deterministic for a
given seed and library versions, but a metric summed over rows may differ in
its last bits between machines or thread counts (seen: log_loss off by 3e-16
with an identical ONNX file). ``--tolerance`` widens that, e.g. when the local
libraries differ from the lineage's (listed as a hint).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_operator.api.modelversion import ModelVersion
    from mlops_operator.api.trainingjob import TrainingJob
    from mlops_operator.k8s import KubeClient
    from mlops_operator.trainer.result import TrainingSucceeded

__all__ = ["DEFAULT_TOLERANCE", "Check", "compare", "recipe_of", "register"]

DEFAULT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Check:
    """One thing compared: what the ModelVersion says, what the re-run gave."""

    name: str
    recorded: str
    reproduced: str
    matches: bool


_UNREADABLE = ("payloadlog://", "pvc://")
"""Recorded URIs that cannot be read as they were: only their snapshot can."""


def _snapshot_uri(store_root: str | None, sha256: str) -> str | None:
    """The stored canonical table of data version `sha256`, when the store has it."""
    if store_root is None:
        return None
    from mlops_operator.storage import ArtifactStore, StorageError

    try:
        store = ArtifactStore(store_root)
        key = f"datasets/{sha256}/data.parquet"
        return store.uri(key) if store.exists(key) else None
    except StorageError:
        return None


def _dataset_of(
    version: ModelVersion, dataset_uri: str | None, store_root: str | None
) -> dict[str, Any]:
    """The recipe's dataset: the recorded sources, each read again or from its snapshot."""
    lineage = version.spec.lineage
    assert lineage is not None
    recorded = lineage.dataset

    def readable(uri: str, sha256: str, what: str) -> tuple[str, str]:
        stored = _snapshot_uri(store_root, sha256)
        if stored is not None:
            return stored, "parquet"
        if uri.startswith(_UNREADABLE):
            raise ValueError(
                f"{what} {uri} can only be read from its snapshot (datasets/{sha256}/ in the"
                " artifact store): pass --store with the store's root"
                + (" or --dataset with a copy of the file" if uri.startswith("pvc://") else "")
            )
        return uri, recorded.format or "auto"

    if recorded.sources:
        sources = []
        for index, source in enumerate(recorded.sources):
            uri, form = readable(source.uri, source.sha256, f"source {index + 1}")
            sources.append({"uri": uri, "format": form, "sample": source.sample})
        return {"sources": sources}
    if dataset_uri is not None:
        return {"uri": dataset_uri, "format": recorded.format or "auto"}
    uri, form = readable(recorded.uri, recorded.sha256, "the dataset")
    return {"uri": uri, "format": form}


def recipe_of(
    version: ModelVersion, *, dataset_uri: str | None = None, store_root: str | None = None
) -> TrainingJob:
    """The TrainingJob that re-creates `version`, with its lineage's recipe.

    `dataset_uri` replaces the recorded dataset (e.g. a local copy of a ``pvc://`` file);
    `store_root` is the artifact store whose snapshots stand in for data that cannot be
    read again (a payload log, a claim's file).
    """
    from mlops_operator.api.trainingjob import CLASSIFIERS, Task, TrainingJob

    spec = version.spec
    lineage = spec.lineage
    if lineage is None:
        raise ValueError(
            f"ModelVersion {version.name} has no lineage (an imported model); nothing to re-run"
        )
    task = spec.signature.task if spec.signature else None
    if task is None:
        classifier = lineage.estimator in CLASSIFIERS
        task = Task.CLASSIFICATION if classifier else Task.REGRESSION
    recipe: dict[str, Any] = {
        "modelName": spec.model_name,
        "dataset": _dataset_of(version, dataset_uri, store_root),
        "target": lineage.target,
        "features": lineage.features,
        "categoricalFeatures": lineage.categorical_features,
        "task": task.value,
        "estimator": {"name": lineage.estimator, "params": lineage.params},
        "seed": lineage.seed,
        "testSize": lineage.test_size,
        "cvFolds": lineage.cv_folds,
    }
    if lineage.preprocessing is not None:
        recipe["preprocessing"] = lineage.preprocessing.model_dump(by_alias=True)
    return TrainingJob.model_validate(
        {
            "metadata": {"name": lineage.training_job or version.name, "namespace": "local"},
            "spec": {key: value for key, value in recipe.items() if value is not None},
        }
    )


def compare(
    version: ModelVersion, result: TrainingSucceeded, *, tolerance: float = DEFAULT_TOLERANCE
) -> list[Check]:
    """Data version, ONNX sha256 and each metric of `version` against a re-run's `result`."""
    spec = version.spec
    recorded_data = spec.lineage.dataset.sha256 if spec.lineage else ""
    checks = [
        Check(
            "data sha256",
            recorded_data,
            result.dataset_sha256,
            recorded_data == result.dataset_sha256,
        ),
        Check(
            "onnx sha256",
            spec.artifact.sha256,
            result.sha256,
            spec.artifact.sha256 == result.sha256,
        ),
    ]
    recorded_sources = (spec.lineage.dataset.sources or []) if spec.lineage else []
    for index, source in enumerate(recorded_sources):
        got = result.dataset_sources[index][0] if index < len(result.dataset_sources) else "-"
        checks.append(Check(f"source {index + 1} sha256", source.sha256, got, got == source.sha256))
    for name in sorted(set(spec.metrics) | set(result.metrics)):
        before, after = spec.metrics.get(name), result.metrics.get(name)
        matches = (
            before is not None
            and after is not None
            and math.isclose(before, after, rel_tol=tolerance, abs_tol=tolerance)
        )
        checks.append(
            Check(
                name,
                "-" if before is None else repr(before),
                "-" if after is None else repr(after),
                matches,
            )
        )
    return checks


async def _claim_path(kube: KubeClient, namespace: str, claim: str) -> str | None:
    """The host directory behind `claim`, when its volume is a host path (the local cluster)."""
    from mlops_operator.k8s import ApiError

    try:
        pvc = await kube.get("v1", "PersistentVolumeClaim", claim, namespace)
        volume = (pvc.get("spec") or {}).get("volumeName")
        pv = await kube.get("v1", "PersistentVolume", volume, None) if volume else {}
    except ApiError:
        return None
    path = ((pv.get("spec") or {}).get("hostPath") or {}).get("path")
    return str(path) if path else None


async def _read_version(
    name: str, namespace: str | None, store: str | None
) -> tuple[ModelVersion, str, str | None]:
    import kopf

    from mlops_operator.api.modelversion import ModelVersion
    from mlops_operator.api.resource import API_VERSION
    from mlops_operator.k8s import KubeClient

    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    if info is None:
        raise ValueError("no kubeconfig: set KUBECONFIG or create ~/.kube/config")
    namespace = namespace or info.default_namespace or "default"
    kube = KubeClient()
    await kube.connect(info)
    try:
        body = await kube.get(API_VERSION, "ModelVersion", name, namespace)
        version = ModelVersion.model_validate({k: v for k, v in body.items() if k != "status"})
        artifact = version.spec.artifact.uri
        if store is None and artifact.startswith("pvc://"):
            # pvc://<claim>/<key>: the store is the claim's root.
            store = await _claim_path(
                kube, namespace, artifact.removeprefix("pvc://").split("/")[0]
            )
    finally:
        await kube.close()
    return version, namespace, store


def _library_hint(version: ModelVersion) -> list[str]:
    from importlib import metadata

    recorded = version.spec.lineage.libraries if version.spec.lineage else {}
    hints = []
    for library, then in sorted(recorded.items()):
        if library == "python":
            continue
        try:
            now = metadata.version(library)
        except metadata.PackageNotFoundError:
            now = "not installed"
        if now != then:
            hints.append(f"{library} {then} when trained, {now} here")
    return hints


def _reproduce(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from mlops_operator.k8s import ApiError
    from mlops_operator.resources.common import ArtifactStorage
    from mlops_operator.resources.trainingjob import UnsupportedSpec, trainer_settings

    try:
        version, namespace, store = asyncio.run(
            _read_version(args.model_version, args.namespace, args.store)
        )
        training = recipe_of(version, dataset_uri=args.dataset, store_root=store)
    except (ApiError, ValueError, ValidationError, OSError) as error:
        print(f"mlops reproduce: {error}", file=sys.stderr)
        return 2
    from mlops_operator.trainer.errors import TrainingError
    from mlops_operator.trainer.run import train

    with tempfile.TemporaryDirectory(prefix="mlops-reproduce-") as scratch:
        output = Path(args.output) if args.output else Path(scratch) / "model"
        storage = ArtifactStorage(claim=None, uri=(Path(scratch) / "store").as_uri())
        image = (version.spec.lineage.image if version.spec.lineage else None) or "local"
        try:
            settings = trainer_settings(training, storage, image).model_copy(
                update={"output_dir": output, "termination_message_path": None}
            )
            result = train(settings).result
        except (UnsupportedSpec, TrainingError) as error:
            print(f"mlops reproduce: the re-run failed: {error}", file=sys.stderr)
            return 2
    checks = compare(version, result, tolerance=args.tolerance)
    print(f"ModelVersion {namespace}/{version.name} re-run from its lineage:")
    width = max(len(c.name) for c in checks)
    for check in checks:
        verdict = "match" if check.matches else "DIFFERS"
        print(f"  {check.name:<{width}}  {verdict:<7}  {check.recorded} -> {check.reproduced}")
    if all(check.matches for check in checks):
        print("reproduced: the data, the ONNX sha256 and every metric match")
        return 0
    print("not reproduced: see DIFFERS above")
    for hint in _library_hint(version):
        print(f"  hint: {hint}")
    return 1


def register(subparsers: Any) -> None:
    """Add `mlops reproduce`."""
    parser = subparsers.add_parser(
        "reproduce",
        help="Re-run a ModelVersion's training from its lineage and compare the results.",
        description=(
            "Read MODELVERSION through the Kubernetes API, train again locally from its lineage"
            " (dataset, estimator, parameters, seed, split, preprocessing), and report whether"
            " the data version, the ONNX sha256 and the metrics match. Exit 0 when they all"
            " match, 1 when something differs, 2 when it cannot be re-run here."
        ),
    )
    parser.add_argument("model_version", metavar="MODELVERSION", help="e.g. iris-v1")
    parser.add_argument("-n", "--namespace", help="default: the kubeconfig context's namespace")
    parser.add_argument(
        "--dataset",
        metavar="URI",
        help="read the data here instead of the recorded URI (needed for pvc:// datasets)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="relative (or, near zero, absolute) difference a metric may show and still match"
        " (default 1e-9)",
    )
    parser.add_argument(
        "--store",
        metavar="URI",
        help="the artifact store whose dataset snapshots stand in for data that cannot be read"
        " again (payload logs, claims); default: a host-path claim's directory, when found",
    )
    parser.add_argument("--output", metavar="DIR", help="keep the re-trained model here")
    parser.set_defaults(func=_reproduce)
