"""The append-only audit log of the operator's decisions, in the artifact store (JSON lines).

Every promotion, rollback and withdrawal of a ModelDeployment and every retrain a
DriftPolicy starts is one `AuditEntry`, written once to
``audit/<namespace>/<kind plural>/<name>.jsonl`` (`log_key`). The operator has no
artifact mount, so a short Job with the trainer image runs the appender
(``python -m mlops_operator.audit append``, `log.append_entries`). This package
never imports Kopf or the Kubernetes client: it runs in that Job.
"""

from mlops_operator.audit.entry import AuditEntry, entry_id, log_key, make_entry
from mlops_operator.audit.log import append_entries, read_entries

__all__ = ["AuditEntry", "append_entries", "entry_id", "log_key", "make_entry", "read_entries"]
