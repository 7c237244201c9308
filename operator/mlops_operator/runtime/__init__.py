"""The operator process itself: settings, its own metrics, logging, and starting Kopf.

`settings` and `metrics` are support modules the handlers may use; `main`
configures logging, wires them together with the handlers and runs Kopf; `commands` is the
`mlops operator ...` CLI and imports `main` only when the command runs, so that
`mlops --help` stays instant.
"""
