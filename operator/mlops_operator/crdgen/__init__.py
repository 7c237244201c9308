"""CRD generation: the API models rendered as CustomResourceDefinitions.

``python -m mlops_operator.crdgen --write`` (``make crds``) updates ``crds/`` and
the Helm chart's CRD templates; ``--check`` fails when they are out of date;
``mlops crds`` prints every CRD as one YAML stream.
"""
