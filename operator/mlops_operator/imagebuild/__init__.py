"""The project's OCI images, built here with buildah on a Debian base made from packages.

`build` holds the machinery (`make images` runs it through ``mlops images build``);
`commands` is the CLI. Development tooling: it needs root, buildah and debootstrap, and is
not part of any image.
"""
