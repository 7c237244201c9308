"""The operator process itself: settings, logging, its own metrics, and starting Kopf.

`settings`, `logs` and `metrics` are support modules the handlers may use; `main`
wires them together with the handlers and runs Kopf; `commands` is the
`mlops operator ...` CLI and imports `main` only when the command runs, so that
`mlops --help` stays instant.
"""
