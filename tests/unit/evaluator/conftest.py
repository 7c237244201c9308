"""The serving tests' fixtures (real models, an in-process server), for the end-to-end join test."""

from tests.unit.serving.conftest import iris_lr, models_root, serve

__all__ = ["iris_lr", "models_root", "serve"]
