"""The validation workload: checks one ModelVersion's artifact and measures it against the champions.

It runs as a Job in the ModelVersion's namespace with the trainer image
(``python -m mlops_operator.validator``), mounting the artifact store, and
reports a `ValidationReport` through its termination message. The operator
never opens artifacts itself; it reads the report and judges the gates with
`mlops_operator.decisions.gates`.
"""
