"""What tenants can point the operator at: images it runs, Prometheus URLs, scrape targets.

Aspects: an image outside the allowed prefixes is refused with the prefixes named, and a prefix
is matched from the start only; a Prometheus URL must be in the allow-list exactly (a trailing
slash aside); a scrape URL is built only from an IP, an integer port and a plain absolute path,
so annotations that smuggle a host (``80@169.254.169.254``), a scheme-relative path (``//x``),
a query or an encoded character are refused, each with a message naming what is wrong; and the
settings read both lists from comma-separated variables.
"""

from __future__ import annotations

import pytest

from mlops_operator.decisions.outbound import image_refusal, prometheus_refusal, scrape_url
from mlops_operator.runtime.settings import OperatorSettings

PROJECT = ["ghcr.io/mlops-operator/"]


@pytest.mark.parametrize(
    "image",
    ["ghcr.io/mlops-operator/trainer:0.1.0", "ghcr.io/mlops-operator/trainer@sha256:" + "a" * 64],
)
def test_the_projects_own_images_are_allowed(image: str) -> None:
    assert image_refusal(image, PROJECT) is None


@pytest.mark.parametrize(
    "image",
    [
        "evil/trainer:1",
        "docker.io/mlops-operator/trainer:1",
        "ghcr.io/mlops-operator-evil/trainer:1",
        "mlops-operator/trainer:1",
        "",
    ],
)
def test_other_images_are_refused_naming_the_prefixes(image: str) -> None:
    refusal = image_refusal(image, PROJECT)
    assert refusal is not None
    assert f"image {image!r} is not allowed" in refusal
    assert "'ghcr.io/mlops-operator/'" in refusal


def test_an_empty_prefix_allows_nothing() -> None:
    assert image_refusal("anything:1", [""]) is not None


def test_prometheus_urls_must_be_in_the_allow_list_exactly() -> None:
    allowed = ["http://prometheus.monitoring:9090"]
    assert prometheus_refusal("http://prometheus.monitoring:9090/", allowed) is None
    for url in (
        "http://prometheus.monitoring:9090.evil.example",
        "http://prometheus.monitoring:9090@169.254.169.254",
        "http://169.254.169.254/latest/meta-data",
    ):
        refusal = prometheus_refusal(url, allowed)
        assert refusal is not None
        assert "not in the operator's allow-list" in refusal
        assert "nothing was fetched" in refusal
    assert "none (no Prometheus is configured" in str(prometheus_refusal("http://p:9090", []))


def test_a_valid_pod_makes_a_url() -> None:
    assert scrape_url("10.244.0.7", "8080", "/metrics").url == "http://10.244.0.7:8080/metrics"
    assert scrape_url("fd00::7", 8080).url == "http://[fd00::7]:8080/metrics"


@pytest.mark.parametrize(
    ("ip", "port", "path", "message"),
    [
        ("10.0.0.1", "80@169.254.169.254", "/metrics", "is not a port number"),
        ("10.0.0.1", "80/x", "/metrics", "is not a port number"),
        ("10.0.0.1", "0", "/metrics", "is not a port number"),
        ("10.0.0.1", "65536", "/metrics", "is not a port number"),
        ("10.0.0.1", " 8080", "/metrics", None),
        ("10.0.0.1", "8080", "//169.254.169.254/latest", "is not an absolute path"),
        ("10.0.0.1", "8080", "@169.254.169.254/x", "is not an absolute path"),
        ("10.0.0.1", "8080", "/metrics?target=http://x", "is not an absolute path"),
        ("10.0.0.1", "8080", "/%2f%2fx", "is not an absolute path"),
        ("10.0.0.1", "8080", "metrics", "is not an absolute path"),
        ("evil.example", "8080", "/metrics", "is not an IP address"),
        ("10.0.0.1:1@x", "8080", "/metrics", "is not an IP address"),
    ],
)
def test_annotations_that_redirect_a_scrape_are_refused(
    ip: str, port: str, path: str, message: str | None
) -> None:
    target = scrape_url(ip, port, path)
    if message is None:  # surrounding blanks in a number are harmless
        assert target.url == "http://10.0.0.1:8080/metrics"
        return
    assert target.url is None
    assert target.refusal is not None
    assert message in target.refusal


def test_settings_read_both_lists_from_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OperatorSettings().allowed_image_prefixes == ["ghcr.io/mlops-operator/"]
    monkeypatch.setenv("MLOPS_ALLOWED_IMAGE_PREFIXES", "ghcr.io/acme/, registry.local/ml:")
    monkeypatch.setenv("MLOPS_PROMETHEUS_URL", "http://prom:9090/")
    monkeypatch.setenv("MLOPS_PROMETHEUS_ALLOWED_URLS", "http://team-prom:9090,http://prom:9090")
    settings = OperatorSettings()
    assert settings.allowed_image_prefixes == ["ghcr.io/acme/", "registry.local/ml:"]
    assert settings.allowed_prometheus_urls == ["http://prom:9090", "http://team-prom:9090"]
