"""The session's CRDs, shared with the operator's tests."""

from tests.integration.operator.conftest import crds

__all__ = ["crds"]
