"""mlops-operator: the MLOps loop (train, version, validate, serve, monitor, retrain) as Kubernetes resources."""

__version__ = "0.1.0"

DEFAULT_IMAGE_REPO = "ghcr.io/mlops-operator"
"""Where released images are published: <repo>/operator, <repo>/trainer, <repo>/server."""
