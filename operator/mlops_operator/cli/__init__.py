"""The `mlops` command (also the kubectl plugin `kubectl-mlops`): every command a person runs.

- `main`: the one parser and dispatcher; the programs the containers run (`mlops operator
  run`, `train`, `serve`) register their subcommands into it from beside their settings.
- `session`: the global flags (``--kubeconfig``, ``--context``, ``-n``, ``--as``, ``--as-group``,
  ``--as-uid``) and the one way a command reaches the API server: the kubeconfig loader
  (`mlops_operator.k8s.kubeconfig`) feeding the operator's own client (`mlops_operator.k8s`).
- `rollout` (promote, rollback, history, approve, reject), `reproduce`, `status` (status,
  lineage; pure rendering in `views`), `console` (launching the web console of
  `mlops_operator.console`): the commands that reach a cluster as the caller;
- `cluster` (the local cluster), `crds`, `images`, `demo`: the install and development ones.
"""

from mlops_operator.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
