"""The termination message stays well under Kubernetes' 4096-byte limit."""

from __future__ import annotations

from mlops_operator.trainer.result import (
    MAX_TERMINATION_MESSAGE_BYTES,
    TrainingFailed,
    TrainingSucceeded,
    parse_termination_message,
    render_termination_message,
)


def test_a_long_failure_message_is_shortened_and_still_parses() -> None:
    failed = TrainingFailed(reason="InvalidDataset", message="column 'é\"x' " + "is bad " * 1000)

    text = render_termination_message(failed)

    assert len(text.encode()) <= MAX_TERMINATION_MESSAGE_BYTES
    parsed = parse_termination_message(text)
    assert isinstance(parsed, TrainingFailed)
    assert parsed.message.startswith("column 'é\"x' is bad")
    assert parsed.message.endswith(" [...]")


def test_an_oversized_success_drops_its_metrics_but_keeps_the_model() -> None:
    succeeded = TrainingSucceeded(
        model_name="m",
        model_uri="file:///store/models/m/" + "0" * 64,
        sha256="0" * 64,
        dataset_sha256="1" * 64,
        metrics={f"metric_{i}": 0.123456789 for i in range(200)},
    )

    text = render_termination_message(succeeded)

    assert len(text.encode()) <= MAX_TERMINATION_MESSAGE_BYTES
    assert parse_termination_message(text) == succeeded.model_copy(update={"metrics": {}})


def test_a_normal_result_is_kept_whole() -> None:
    succeeded = TrainingSucceeded(
        model_name="m",
        model_uri="file:///x",
        sha256="0" * 64,
        dataset_sha256="1" * 64,
        metrics={"accuracy": 0.9},
    )

    assert parse_termination_message(render_termination_message(succeeded)) == succeeded
