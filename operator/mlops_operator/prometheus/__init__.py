"""Reading live metrics: PromQL against a Prometheus server, or the pods' ``/metrics`` directly.

The one package that reads metrics, for every reader: the rollout's analysis and
floors, the DriftPolicy, the console. `PrometheusClient.query(promql)` returns an
instant vector as a list of `Sample`; `scrape(url)` reads one exposition endpoint
into the same `Sample` shape, so the operator can judge when no Prometheus is
configured. On top of those two:

- `live`: one version's traffic as `LiveCounts`, for the canary analysis and the
  rollback floors;
- `promql`, `windows`, `history`: a served model's counts over a DriftPolicy's
  window as `WindowCounts`, queried from Prometheus or differenced from scrapes kept
  over time.

The maths over those counts (rates, quantiles from histogram buckets, PSI, each
trigger's reading) lives in `mlops_operator.decisions`, shared by both sources. The
names of the evaluator's gauges read here are `mlops_operator.realized`.
"""

from mlops_operator.prometheus.client import PrometheusClient, PrometheusError, Sample, Series
from mlops_operator.prometheus.exposition import ScrapeError, parse_exposition, scrape

__all__ = [
    "PrometheusClient",
    "PrometheusError",
    "Sample",
    "ScrapeError",
    "Series",
    "parse_exposition",
    "scrape",
]
