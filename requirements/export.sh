#!/usr/bin/env bash
# Write requirements/<set>.txt (exact versions with hashes) from uv.lock, the one lock file that
# the images, CI and `make venv` share. `make lock` runs it after `uv lock`; a unit test runs it
# into a temporary directory and fails when the checked-in files differ.
# Usage: UV=/path/to/uv requirements/export.sh [OUTPUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/requirements}"
uv="${UV:-uv}"
cd "$root"
# set: the extras (and dependency groups) it installs.
while read -r name selection; do
  # shellcheck disable=SC2086  # the selection is a list of flags
  "$uv" export --frozen --quiet --no-emit-project --no-default-groups --no-header \
    --format requirements.txt $selection -o "$out/$name.txt"
done <<'SETS'
operator --extra operator
trainer --extra train --extra s3
server --extra serve --extra s3
build --only-group build
dev --extra dev --group build
SETS
