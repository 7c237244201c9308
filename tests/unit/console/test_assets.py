"""The console's assets: vendored files are the published ones, and nothing is fetched elsewhere.

Aspects: each vendored file's sha256 is the one its README records (taken unmodified from
the npm registry, licence beside it); the templates and the console's own script name no
address outside the console (no CDN, no font service), so a page loads with no network.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import mlops_operator.console

CONSOLE = Path(mlops_operator.console.__file__).parent
VENDOR = CONSOLE / "static" / "vendor"


def test_vendored_files_are_the_published_ones() -> None:
    table = (VENDOR / "README.md").read_text()
    recorded = dict(
        re.findall(r"^\| (\S+) \| \S+ \| \S+ \| .*? \| ([0-9a-f]{64}) \|$", table, re.MULTILINE)
    )
    assert set(recorded) == {"htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css"}
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert (VENDOR / "htmx.LICENSE").is_file()
    assert (VENDOR / "uPlot.LICENSE").is_file()


def test_pages_reference_only_the_console_itself() -> None:
    sources = [
        *(CONSOLE / "templates").glob("*.html"),
        CONSOLE / "static" / "console.js",
        CONSOLE / "static" / "console.css",
    ]
    for source in sources:
        text = source.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), source
        assert "@import" not in text, source
        assert "url(http" not in text, source
