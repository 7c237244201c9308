"""Kopf's configuration at startup: what a fresh `kopf.OperatorSettings` becomes.

Aspects: no log record becomes an Event while explicit events still post;
progress and diff-base in annotations under mlops.dev (never status.kopf);
watch and request timeouts are finite.
"""

from __future__ import annotations

import logging

import kopf

from mlops_operator.handlers.lifecycle import configure_kopf


def test_only_explicit_events_are_posted() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings)
    assert settings.posting.enabled
    assert settings.posting.level > logging.CRITICAL
    assert settings.posting.reporting_component == "mlops-operator"


def test_progress_is_kept_in_annotations_not_in_the_typed_status() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings)
    progress = settings.persistence.progress_storage
    diffbase = settings.persistence.diffbase_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage)
    assert not isinstance(progress, kopf.StatusProgressStorage)
    assert progress.prefix == "mlops.dev"
    assert isinstance(diffbase, kopf.AnnotationsDiffBaseStorage)
    assert diffbase.prefix == "mlops.dev"
    assert settings.persistence.finalizer.startswith("mlops.dev/")


def test_watches_and_requests_time_out() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings)
    server, client = settings.watching.server_timeout, settings.watching.client_timeout
    assert server is not None
    assert client is not None
    assert 0 < server < client
    assert settings.watching.connect_timeout is not None
    assert settings.networking.request_timeout is not None
