"""The inference server: onnxruntime behind HTTP (KServe V2 and /predict), with Prometheus metrics.

Runs in the serving pods (`mlops serve`); never imports the operator runtime.
"""
