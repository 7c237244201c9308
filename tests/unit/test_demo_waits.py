"""The demo's waits say why they failed: what the probe saw last, not just ``False``."""

from __future__ import annotations

import pytest

from mlops_operator.demo.kube import DemoError, NotYet, wait_until
from mlops_operator.demo.loop import _pod_state


def test_a_timed_out_wait_names_what_the_probe_saw() -> None:
    seen = NotYet("Ready ReplicasUnavailable: no pod of version 1 is ready yet; pods: none")
    assert not seen
    with pytest.raises(DemoError) as raised:
        wait_until(lambda: seen, timeout=0.05, interval=0.01, what="iris to be Ready")
    assert str(raised.value).endswith(
        "last seen: Ready ReplicasUnavailable: no pod of version 1 is ready yet; pods: none"
    )


def test_a_pod_state_says_why_its_container_waits() -> None:
    pod = {
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "server",
                    "ready": False,
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                }
            ],
        }
    }
    assert _pod_state(pod) == (
        "Running [server=waiting CrashLoopBackOff back-off 40s ready=False restarts=3]"
    )
    assert _pod_state({"status": {"phase": "Pending"}}) == "Pending []"
