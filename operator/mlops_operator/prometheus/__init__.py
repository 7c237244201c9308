"""Reading live metrics: PromQL against a Prometheus server, or the pods' ``/metrics`` directly.

`PrometheusClient.query(promql)` returns an instant vector as a list of `Sample`;
`scrape(url)` reads one exposition endpoint into the same `Sample` shape, so the
operator can judge a rollout when no Prometheus is configured. The maths over
those samples (rates, quantiles from histogram buckets) lives in
`mlops_operator.decisions`, shared by both sources.
"""

from mlops_operator.prometheus.client import PrometheusClient, PrometheusError, Sample, Series
from mlops_operator.prometheus.scrape import ScrapeError, parse_exposition, scrape

__all__ = [
    "PrometheusClient",
    "PrometheusError",
    "Sample",
    "ScrapeError",
    "Series",
    "parse_exposition",
    "scrape",
]
