"""The liveness probe's one check: can the operator reach a ready API server?

Kopf's liveness endpoint answers 200 with the results of the ``@kopf.on.probe``
handlers, so with none it keeps answering 200 while the API server (or its etcd)
is gone and nothing can be reconciled. This probe makes the endpoint answer 500
with the reason then: a handler raising `kopf.PermanentError` fails Kopf's probe
activity at once, where a temporary error would make it retry inside the request.
Kopf caches a successful probe for 10 s, so an outage shows within ~10 s plus the
request timeout. The watches and handlers recover by themselves once the API is
back (``tests/reliability/test_control_plane_faults.py`` shows it); a kubelet
restarting the pod after the probe's ``failureThreshold`` only starts it afresh.
"""

from __future__ import annotations

from typing import Any

import kopf

from mlops_operator.handlers.context import OperatorContext

__all__ = ["PROBE_TIMEOUT", "api_server_ready"]

PROBE_TIMEOUT = 3.0
"""Seconds the probe waits for ``/readyz``: well below the chart's probe timeout (5 s)."""


@kopf.on.probe(id="apiServer")
async def api_server_ready(memo: OperatorContext, **_: Any) -> str:
    """Kopf probe: ``ready`` when the API server is, else fail the liveness probe with why."""
    problem = await memo.kube.readiness_problem(wait_seconds=PROBE_TIMEOUT)
    if problem is not None:
        raise kopf.PermanentError(f"the API server is not ready: {problem}")
    return "ready"
