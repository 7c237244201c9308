"""The cluster flags work before and after the command, as kubectl users type them.

Aspects: after the command; before it (how `kubectl mlops --context x status` arrives); after
wins over before; the console's ``-n`` (namespaces to show) takes one given before it; a
command that does not use the kubeconfig refuses them before it rather than ignore them; the
flags become the loader's `Overrides`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mlops_operator.cli import build_parser
from mlops_operator.cli.session import merge_global_flags, overrides
from mlops_operator.k8s.kubeconfig import Overrides

pytestmark = pytest.mark.unit


def _parse(*argv: str) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    merge_global_flags(parser, args)
    return args


def test_after_the_command() -> None:
    args = _parse(
        "promote", "iris", "--to", "3", "--context", "prod", "-n", "ml",
        "--as", "alice", "--as-group", "approvers", "--as-group", "devs",
        "--kubeconfig", "/tmp/k", "--as-uid", "7",
    )  # fmt: skip
    assert overrides(args) == Overrides(
        kubeconfig=Path("/tmp/k"),
        context="prod",
        namespace="ml",
        impersonate="alice",
        impersonate_groups=("approvers", "devs"),
        impersonate_uid="7",
    )
    assert (args.name, args.to) == ("iris", 3)


def test_before_the_command_and_after_wins() -> None:
    before = _parse("--context", "prod", "-n", "ml", "--as", "bob", "status", "-A")
    assert overrides(before) == Overrides(context="prod", namespace="ml", impersonate="bob")
    both = _parse("--context", "prod", "-n", "ml", "history", "iris", "--context", "dev")
    assert (both.context, both.namespace) == ("dev", "ml")


def test_the_consoles_namespaces_take_one_given_before() -> None:
    assert _parse("-n", "team-a", "console").namespace == ["team-a"]
    assert _parse("-n", "team-a", "console", "-n", "b", "-n", "c").namespace == ["b", "c"]
    assert overrides(_parse("console", "-n", "b", "--as", "x")).namespace is None


def test_commands_without_a_kubeconfig_refuse_them_before(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parse("--context", "prod", "cluster", "status")
    assert exited.value.code == 2
    assert "--context before the command applies to commands that use your kubeconfig" in (
        capsys.readouterr().err
    )
    # Their own flags after them are theirs.
    assert _parse("cluster", "logs", "x", "-n", "kube-system").namespace == "kube-system"
