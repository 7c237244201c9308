"""The trainer: the program in the training pod, also ``mlops train`` on a laptop.

It loads a dataset, records its content hash (the data version), fits an
allow-listed scikit-learn estimator, evaluates it on a held-out split, exports
it to ONNX, checks ONNX-vs-scikit-learn parity, records the training
distributions for drift, and writes ``model.onnx`` with its model card.

Importing this package is cheap: only :mod:`.settings` and :mod:`.result` are
needed by the operator (to render the pod's environment and to read its
termination message), so nothing here imports scikit-learn at import time.
It never imports kopf or a Kubernetes client.
"""
