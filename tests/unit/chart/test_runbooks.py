"""The runbooks the alerts link to: one section per alert, and only commands that exist.

Aspects: every `kubectl mlops COMMAND` and `mlops COMMAND` cited in docs/runbooks.md and in
the chart's templates is a subcommand of the CLI (the runbook once told people to run
`kubectl mlops retrain`, which never existed); the checker finds such a command; every alert
of the PrometheusRule has its section.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from mlops_operator.cli import build_parser
from tests.unit.chart.rendered import REPO

RUNBOOKS = REPO / "docs" / "runbooks.md"
RULE = REPO / "charts" / "mlops-operator" / "templates" / "monitoring" / "prometheusrule.yaml"
# A command: `kubectl mlops X` anywhere; `mlops X` in backquotes or starting a (code) line.
_CITED = re.compile(
    r"kubectl mlops ([a-z][a-z-]*)|`(?:\S*/)?mlops ([a-z][a-z-]*)|^\s*(?:\$ )?(?:\S*/)?mlops ([a-z][a-z-]*)",
    re.MULTILINE,
)


def _cited(text: str) -> set[str]:
    return {name for match in _CITED.findall(text) for name in match if name}


def _subcommands() -> set[str]:
    parser = build_parser()
    (choices,) = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(choices)


def _missing(text: str) -> set[str]:
    return _cited(text) - _subcommands()


def test_every_cited_command_exists() -> None:
    texts = [RUNBOOKS, *sorted((REPO / "charts" / "mlops-operator" / "templates").rglob("*"))]
    for path in (p for p in texts if p.is_file()):
        assert _missing(path.read_text()) == set(), path


def test_the_checker_finds_a_command_that_does_not_exist() -> None:
    assert _missing("then run `kubectl mlops retrain POLICY` or `mlops history X`") == {"retrain"}
    assert _cited("$ mlops rollback iris\n`.venv/bin/mlops promote`, the four mlops kinds") == {
        "rollback",
        "promote",
    }


def test_every_alert_has_its_section() -> None:
    alerts = re.findall(r"- alert: (\w+)", RULE.read_text())
    assert len(alerts) == 5
    headings = re.findall(r"^## (\w+)$", RUNBOOKS.read_text(), re.MULTILINE)
    assert sorted(alerts) == sorted(headings)


def test_the_runbooks_page_is_where_the_default_url_points() -> None:
    values = (REPO / "charts" / "mlops-operator" / "values.yaml").read_text()
    (url,) = re.findall(r"runbookBaseUrl: (\S+)", values)
    assert url.endswith("/" + str(RUNBOOKS.relative_to(REPO)).replace("\\", "/"))
    assert Path(RUNBOOKS).is_file()
