"""mlops-operator: the MLOps loop (train, version, validate, serve, monitor, retrain) as Kubernetes resources."""

__version__ = "0.1.0"
