"""Measuring drift and decay of a served model over a window.

Two sources give the same numbers: Prometheus, queried with PromQL over the
inference server's counters (`promql`, `prometheus`), and, when no Prometheus
is configured, the serving pods' ``/metrics`` scraped directly and differenced
over the window (`scrape`). Both produce `WindowCounts`; `measure` turns those
into one reading per trigger with the shared maths of `mlops_operator.distributions`.
"""
