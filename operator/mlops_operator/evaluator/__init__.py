"""The evaluator: one pod per ModelDeployment with labels, joining predictions and labels.

It reads the deployment's prediction and label logs (``serving/labels.py``),
joins them per window with DuckDB (`join`), judges the windows by label coverage
(`windows`) and exports realized and estimated performance as Prometheus
metrics (`metrics`), which the DriftPolicy, canary analysis, rollback floors and
PromQL all read. A workload: it never imports kopf, scikit-learn or onnxruntime.
"""
