"""`mlops console`: a read-only web console of the models, their lineage and the loop.

- `store`: the four kinds in the namespaces the identity may read, kept current by
  watches (I/O), and the scope decided by RBAC;
- `views`, `graph`, `series`, `formatting`: what each page shows (pure, from a
  `store.Snapshot`), the loop as a graph, the charts' data, how values are written;
- `app`: the aiohttp application (GET only), its Jinja2 templates and vendored assets;
- `commands`: the CLI, which logs in as the caller (kubeconfig) or as the pod's
  ServiceAccount, and serves.

docs/console.md describes the pages and the in-cluster deployment.
"""
