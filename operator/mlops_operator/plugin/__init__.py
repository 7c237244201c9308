"""`kubectl mlops ...` (the same `mlops` CLI): views of the models in a cluster for people and scripts.

`kubectl` reads the objects (so every kubeconfig, context and credential plugin kubectl supports
works), `views` turns them into rows and trees (pure), `commands` wires both to the CLI.
"""
