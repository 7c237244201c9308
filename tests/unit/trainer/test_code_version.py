"""The trainer records the code version (package + commit) in the card the ModelVersion copies."""

from __future__ import annotations

import pytest

from mlops_operator import __version__, buildinfo
from mlops_operator.trainer.run import train
from tests.unit.trainer.conftest import MakeSettings


def test_the_trainer_records_the_commit(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    buildinfo.code_version.cache_clear()
    monkeypatch.setenv(buildinfo.BUILD_COMMIT_ENV, "fedcba9876543210fedcba9876543210fedcba98")
    try:
        outcome = train(make_settings())
    finally:
        buildinfo.code_version.cache_clear()
    assert outcome.card.lineage.code_version == f"{__version__}+gfedcba987654"
    assert outcome.result.code_version == outcome.card.lineage.code_version
