"""The ModelDeployment fixtures (restricted namespace with its claim, store, operator), reused."""

from tests.integration.modeldeployment.conftest import crds, operator, restricted, store

__all__ = ["crds", "operator", "restricted", "store"]
