"""Combined datasets: several sources, each versioned and snapshotted, sampled with the seed.

Aspects: two sources train one model whose card lists both with their own sha256
(the canonical content of each), the rows each gave, and a data version of the
combination; every source is snapshotted under its sha256; a sample is the same
rows on every run; sources whose columns differ are refused naming the source; a
dataset's format overrides its file name's extension; and the whole combination is
rebuilt by `mlops reproduce` from the snapshots alone, matching the ONNX sha256.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_iris

from mlops_operator.api.modelversion import ModelVersion
from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.reproduce import compare, recipe_of
from mlops_operator.resources.common import ArtifactStorage
from mlops_operator.resources.trainingjob import build_model_version, trainer_settings
from mlops_operator.trainer.errors import TrainingError
from mlops_operator.trainer.run import train
from mlops_operator.trainer.settings import DataSource, TrainerSettings
from mlops_operator.trainer.snapshot import canonicalize, content_sha256


@pytest.fixture
def halves(tmp_path: Path) -> tuple[Path, Path]:
    frame = load_iris(as_frame=True).frame
    first, second = tmp_path / "old.csv", tmp_path / "window.parquet"
    frame.iloc[::2].to_csv(first, index=False)
    frame.iloc[1::2].reset_index(drop=True).to_parquet(second, index=False)
    return first, second


def _settings(tmp_path: Path, sources: list[DataSource], **extra: object) -> TrainerSettings:
    return TrainerSettings(
        sources=sources, target="target", estimator="LogisticRegression",
        params={"max_iter": 500}, output_dir=tmp_path / "model",
        store_uri=str(tmp_path / "store"), model_name="iris", **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def test_two_sources_are_combined_and_each_keeps_its_data_version(
    tmp_path: Path, halves: tuple[Path, Path]
) -> None:
    first, second = halves
    sources = [
        DataSource(uri=str(first), sample=0.4, lineage_uri="file:///original.csv"),
        DataSource(uri=str(second), lineage_uri="payloadlog://ml/iris?window=24h"),
    ]
    outcome = train(_settings(tmp_path, sources))
    lineage = outcome.card.lineage
    old = canonicalize(pd.read_csv(first))
    window = canonicalize(pd.read_parquet(second))
    assert [(s.uri, s.sha256, s.rows, s.used_rows) for s in lineage.sources] == [
        ("file:///original.csv", content_sha256(old), 75, 30),
        ("payloadlog://ml/iris?window=24h", content_sha256(window), 75, 75),
    ]
    assert lineage.dataset_uri == "file:///original.csv + payloadlog://ml/iris?window=24h"
    assert lineage.dataset_rows == 105
    assert lineage.dataset_sha256 not in {s.sha256 for s in lineage.sources}
    assert outcome.result.dataset_sources == [
        (s.sha256, s.rows, s.used_rows) for s in lineage.sources
    ]
    store = tmp_path / "store" / "datasets"
    for source in lineage.sources:
        assert (store / source.sha256 / "data.parquet").exists()
    assert (store / lineage.dataset_sha256 / "data.parquet").exists()
    # The same seed draws the same rows: the same data version again.
    again = train(_settings(tmp_path / "again", sources))
    assert again.card.lineage.dataset_sha256 == lineage.dataset_sha256


def test_sources_with_other_columns_are_refused(tmp_path: Path, halves: tuple[Path, Path]) -> None:
    first, _ = halves
    other = tmp_path / "other.csv"
    pd.read_csv(first).rename(columns={"petal width (cm)": "petal_width"}).to_csv(
        other, index=False
    )
    sources = [DataSource(uri=str(first)), DataSource(uri=str(other))]
    with pytest.raises(TrainingError, match=r"does not have the columns of .*old.csv.*petal_width"):
        train(_settings(tmp_path, sources))


def test_the_format_overrides_the_extension(tmp_path: Path, halves: tuple[Path, Path]) -> None:
    first, _ = halves
    data = tmp_path / "export.dat"
    data.write_bytes(first.read_bytes())
    base = {"target": "target", "estimator": "LogisticRegression", "params": {"max_iter": 500},
            "output_dir": tmp_path / "model"}  # fmt: skip
    with pytest.raises(TrainingError, match=r"unsupported extension '\.dat'.*format"):
        train(TrainerSettings(dataset_uri=str(data), **base))  # type: ignore[arg-type]
    trained = train(TrainerSettings(dataset_uri=str(data), dataset_format="csv", **base))  # type: ignore[arg-type]
    assert trained.card.lineage.dataset_rows == 75
    with pytest.raises(TrainingError, match="could not be read"):
        train(TrainerSettings(dataset_uri=str(data), dataset_format="parquet", **base))  # type: ignore[arg-type]


def test_reproduce_rebuilds_a_combination_from_the_snapshots_alone(
    tmp_path: Path, halves: tuple[Path, Path]
) -> None:
    first, second = halves
    store = tmp_path / "store"
    storage = ArtifactStorage(claim=None, uri=store.as_uri())
    training = TrainingJob.model_validate({
        "metadata": {"name": "retrain", "namespace": "ml", "uid": "u"},
        "spec": {"modelName": "iris", "target": "target", "seed": 3,
                 "estimator": {"name": "LogisticRegression", "params": {"max_iter": 500}},
                 "dataset": {"sources": [
                     {"uri": first.as_uri(), "sample": 0.5},
                     {"fromPayloadLog": {"deployment": "iris", "window": "1h"}},
                 ]}},
    })  # fmt: skip
    settings = trainer_settings(training, storage, "img", {})
    assert settings.sources[1].lineage_uri == "payloadlog://ml/iris?window=1h"
    # The payload log itself is replaced by a file here; the lineage names it as the log.
    logged = settings.sources[1].model_copy(update={"uri": str(second)})
    settings = settings.model_copy(
        update={"sources": [settings.sources[0], logged], "output_dir": tmp_path / "out"}
    )
    result = train(settings).result
    manifest = build_model_version(training, result, name="iris-v2", version=2, storage=storage,
                                   image="img")  # fmt: skip
    version = ModelVersion.model_validate(manifest)
    recorded = version.spec.lineage.dataset.sources  # type: ignore[union-attr]
    assert [s.uri for s in recorded or []] == [first.as_uri(), "payloadlog://ml/iris?window=1h"]
    with pytest.raises(ValueError, match="can only be read from its snapshot"):
        recipe_of(version)
    first.unlink()  # nothing but the snapshots is left
    recipe = recipe_of(version, store_root=store.as_uri())
    rebuilt = trainer_settings(recipe, storage, "img").model_copy(
        update={"output_dir": tmp_path / "rebuilt", "store_uri": None}
    )
    checks = compare(version, train(rebuilt).result)
    assert {c.name for c in checks} >= {"data sha256", "source 1 sha256", "source 2 sha256",
                                         "onnx sha256", "accuracy"}  # fmt: skip
    assert all(c.matches for c in checks), [c for c in checks if not c.matches]
