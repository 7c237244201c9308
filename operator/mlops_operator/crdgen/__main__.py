"""``python -m mlops_operator.crdgen``: write or check the generated CRD files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlops_operator.crdgen.render import stale_files, write_files


def main(argv: Sequence[str] | None = None) -> int:
    """Write (``--write``) or check (``--check``) the CRD files under ``--root``."""
    parser = argparse.ArgumentParser(
        prog="python -m mlops_operator.crdgen", description=__doc__.strip()
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="update the files")
    mode.add_argument("--check", action="store_true", help="exit 1 if any file is out of date")
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="repository root (default: the current one)"
    )
    args = parser.parse_args(argv)
    if args.write:
        for path in write_files(args.root):
            print(f"updated {path}")
        return 0
    stale = stale_files(args.root)
    for path in stale:
        print(f"out of date: {path} (run `make crds`)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
