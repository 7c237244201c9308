"""A real Kubernetes cluster on one machine, for laptops and CI with no cluster.

Upstream's own binaries (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kube-proxy) built from their Go modules, wired together on
loopback with a PKI generated here. Production uses any Kubernetes cluster.
"""
