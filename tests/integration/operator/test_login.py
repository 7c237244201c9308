"""The operator logs in out of a cluster as kubectl does: through the one kubeconfig loader,
exec credential plugins included.

Against the real API server, with a kubeconfig whose only user authenticates through an exec
plugin (what EKS's, GKE's and AKS's kubeconfigs use); the plugin mints, at each run, a client
certificate that really expires (its X.509 notAfter ~20 s away, so the API server refuses it
after that), signed by the cluster's CA. Aspects:

- started with it, the operator reconciles: a TrainingJob gets its trainer Job (the handlers'
  client), its status, and Kopf's bookkeeping annotation (Kopf's own requests);
- it keeps reconciling past each credential's end, because the plugin runs again, whether the
  plugin says when its credential expires (``expirationTimestamp``: Kopf logs in again at that
  moment) or not (the API server's 401 makes each client ask again);
- Kopf and the handlers share each credential: every run of the plugin comes after the
  credential before it ended, so neither ran it for itself while the other's was still good;
- credentials the API server refuses and that cannot change (a revoked token in the
  kubeconfig) stop the operator with exit status 1 and one line saying why.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.execplugins import exec_user, plugin, runs
from tests.integration.operator.conftest import MLOPS, REPO, operator_for_test
from tests.kube import get_json, kubectl, wait_for
from tests.ports import free_port

CERTIFICATE_SECONDS = 20
"""How long each certificate the plugin mints is valid (its notAfter)."""
TOLD_SECONDS = 15
"""With ``expirationTimestamp``: how long the plugin says its credential lasts; a little less
than the certificate, as cloud plugins say of their tokens."""
ROUNDS = 2
"""How many times the operator must work on after every credential it was given has ended."""


def _minting_plugin(folder: Path, admin: Path, user: str, *, told: bool) -> Path:
    """An exec plugin minting a client certificate for `user` (a cluster admin) at each run,
    with an ``expirationTimestamp`` when `told`."""
    ca = Path(yaml.safe_load(admin.read_text())["clusters"][0]["cluster"]["certificate-authority"])
    pki = folder / "pki"
    pki.mkdir()
    for part in ("crt", "key"):
        shutil.copy(ca.with_suffix(f".{part}"), pki / f"ca.{part}")
    # X.509 times are whole seconds: so is `valid_until`, the certificate's exact notAfter.
    return plugin(
        folder / "mint-cert.py",
        f"""from mlops_operator.localcluster.pki import ClientIdentity, ensure_client_cert
start = now.replace(microsecond=0)
identity = ClientIdentity(f"operator-{{count}}", {user!r}, ("system:masters",))
valid_until = start + timedelta(seconds={CERTIFICATE_SECONDS})
cert, key = ensure_client_cert(Path({str(pki)!r}), identity, not_after=valid_until)
status = {{"clientCertificateData": cert.read_text(), "clientKeyData": key.read_text()}}
if {told!r}:
    valid_until = start + timedelta(seconds={TOLD_SECONDS})
    status["expirationTimestamp"] = valid_until.isoformat()
""",
    )


def _exec_only_kubeconfig(folder: Path, admin: Path, script: Path) -> Path:
    """The admin kubeconfig's cluster, and one user: the plugin."""
    cluster = yaml.safe_load(admin.read_text())["clusters"][0]
    path = folder / "exec-only"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "cloud", "user": exec_user(script)}],
                "contexts": [
                    {"name": "cloud", "context": {"cluster": cluster["name"], "user": "cloud"}}
                ],
                "current-context": "cloud",
            }
        )
    )
    return path


def _training_job(kubeconfig: Path, namespace: str, name: str) -> None:
    doc: dict[str, Any] = yaml.safe_load(
        (REPO / "manifests" / "examples" / "trainingjob.yaml").read_text()
    )
    doc["metadata"] |= {"name": name, "namespace": namespace}
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(doc))


def _reconciled(kubeconfig: Path, namespace: str, name: str) -> dict[str, Any] | None:
    """The TrainingJob's trainer Job once the handlers created it and wrote the status, and Kopf
    wrote its bookkeeping; else None."""
    training = get_json(kubeconfig, "trainingjobs.mlops.dev", name, "-n", namespace)
    metadata = training["metadata"]
    if (training.get("status") or {}).get("observedGeneration") != metadata["generation"]:
        return None
    if "mlops.dev/last-handled-spec" not in metadata.get("annotations", {}):
        return None
    for job in get_json(kubeconfig, "jobs", "-n", namespace)["items"]:
        owners = job["metadata"].get("ownerReferences", [])
        if any(o["uid"] == metadata["uid"] and o.get("controller") for o in owners):
            return dict(job)
    return None


@pytest.mark.parametrize("told", [True, False], ids=["expirationTimestamp", "refused-401"])
def test_the_operator_logs_in_through_an_exec_plugin_and_past_each_expiry(
    told: bool, kubeconfig: Path, crds: list[Path], namespace: str, tmp_path: Path
) -> None:
    script = _minting_plugin(tmp_path, kubeconfig, f"exec-operator@{namespace}", told=told)
    credentials = _exec_only_kubeconfig(tmp_path, kubeconfig, script)
    # No trainer pod may start: the test is about the operator's requests, not training.
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"},
             "spec": {"hard": {"pods": "0"}}}  # fmt: skip
    kubectl(kubeconfig, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(quota))
    log = tmp_path / "operator.log"
    with operator_for_test(kubeconfig, namespace, log, credentials=credentials):
        for round_ in range(ROUNDS + 1):
            if round_:
                # Wait for what is asserted: every credential handed out so far has ended.
                ended = max(run.valid_until for run in runs(script) if run.valid_until)
                time.sleep(max(0.0, (ended - datetime.now(UTC)).total_seconds()) + 0.5)
            name = f"login-{round_}"
            _training_job(kubeconfig, namespace, name)
            wait_for(
                lambda name=name: _reconciled(kubeconfig, namespace, name),
                timeout=90,
                what=f"TrainingJob {name} reconciled (round {round_})",
            )
    ran = runs(script)
    assert len(ran) >= 1 + ROUNDS, ran
    for before, after in itertools.pairwise(ran):
        assert before.valid_until is not None
        # Run again only once the credential before had ended: shared, never run twice.
        assert after.ran >= before.valid_until, ran
    text = log.read_text()
    # Kopf's own requests went on with fresh credentials too: it logged in again.
    assert text.count("Re-authentication has finished") >= ROUNDS, text[-3000:]
    assert "Re-authentication has failed" not in text


def test_credentials_the_api_server_refuses_stop_the_operator(
    kubeconfig: Path, crds: list[Path], namespace: str, tmp_path: Path
) -> None:
    admin = yaml.safe_load(kubeconfig.read_text())
    admin["users"][0]["user"] = {"token": "revoked"}
    refused = tmp_path / "refused"
    refused.write_text(yaml.safe_dump(admin))
    proc = subprocess.run(
        [str(MLOPS), "operator", "run", f"--kubeconfig={refused}", f"--namespace={namespace}",
         "--bind-address=127.0.0.1", f"--liveness-port={free_port()}",
         f"--metrics-port={free_port()}"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    # Refused (401) at the start, with a token nothing can renew: it stops rather than retry
    # what cannot change, and says why, before Kopf starts (whose own path to this is a race).
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "operator starting" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "mlops operator run: the API server does not accept the operator's credentials (the"
        " kubeconfig's user, or in a pod its service account)"
    )
