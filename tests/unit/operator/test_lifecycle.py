"""Kopf's configuration at startup: what a fresh `kopf.OperatorSettings` becomes.

Aspects: no log record becomes an Event while explicit events still post;
progress and diff-base in annotations under mlops.dev (never status.kopf), the diff-base
as a digest of the spec;
watch and request timeouts are finite and come from the operator's settings.
"""

from __future__ import annotations

import logging

import kopf

from mlops_operator.handlers.bookkeeping import SpecDigestStorage
from mlops_operator.handlers.lifecycle import configure_kopf
from mlops_operator.runtime.settings import OperatorSettings


def test_only_explicit_events_are_posted() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    assert settings.posting.enabled
    assert settings.posting.level > logging.CRITICAL
    assert settings.posting.reporting_component == "mlops-operator"


def test_progress_is_kept_in_annotations_not_in_the_typed_status() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    progress = settings.persistence.progress_storage
    diffbase = settings.persistence.diffbase_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage)
    assert not isinstance(progress, kopf.StatusProgressStorage)
    assert progress.prefix == "mlops.dev"
    assert isinstance(diffbase, SpecDigestStorage)
    assert diffbase.prefix == "mlops.dev"
    assert settings.persistence.finalizer.startswith("mlops.dev/")


def test_watches_and_requests_time_out() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    server, client = settings.watching.server_timeout, settings.watching.client_timeout
    assert server is not None
    assert client is not None
    assert 0 < server < client
    assert settings.watching.connect_timeout is not None
    assert settings.networking.request_timeout is not None


def test_timeouts_come_from_the_operator_settings() -> None:
    settings = kopf.OperatorSettings()
    ours = OperatorSettings(
        watch_server_timeout=20,
        watch_client_timeout=25,
        watch_inactivity_timeout=5,
        api_request_timeout=7,
        api_connect_timeout=3,
    )
    configure_kopf(settings, ours)
    assert (settings.watching.server_timeout, settings.watching.client_timeout) == (20, 25)
    assert settings.watching.inactivity_timeout == 5
    assert settings.watching.connect_timeout == settings.networking.connect_timeout == 3
    assert settings.networking.request_timeout == 7
