"""`mlops images ...`: build the operator, trainer and server images with buildah."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


def _build(args: argparse.Namespace) -> int:
    from mlops_operator.imagebuild.build import IMAGES, build_images

    built = build_images(args.repo, args.tag, args.target or IMAGES)
    for image in built:
        print(json.dumps({"target": image.target, "image": image.name, "digest": image.digest}))
    return 0


def _base(args: argparse.Namespace) -> int:
    from mlops_operator.imagebuild.build import base_image

    print(base_image())
    return 0


def register(subparsers: Any) -> None:
    """Add `mlops images ...` to the CLI."""
    from mlops_operator import DEFAULT_IMAGE_REPO, __version__

    images = subparsers.add_parser("images", help="build the project's OCI images (buildah)")
    actions = images.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="build images/Dockerfile's targets on a Debian base made here",
        description="Build <repo>/<target>:<tag> into buildah's local storage (root).",
    )
    build.add_argument("--repo", default=DEFAULT_IMAGE_REPO, help="repository prefix")
    build.add_argument("--tag", default=__version__, help="tag (default: the package version)")
    build.add_argument(
        "--target",
        action="append",
        choices=["operator", "trainer", "server"],
        help="an image to build (repeatable; default: all three)",
    )
    build.set_defaults(func=_build)
    actions.add_parser(
        "base", help="make (first run) and print the base image, by digest"
    ).set_defaults(func=_base)
