"""What the operator lets tenants point it at: images it runs, URLs it fetches.

Everything a tenant writes in a spec or a pod annotation is input, and these
are the checks that stand between that input and the operator acting on it:

- **Images** (`image_refusal`): a TrainingJob's ``spec.image`` must start with
  one of the prefixes the operator's settings allow (by default the project's
  own images); the trainer pod mounts the artifact store read-write and the
  dataset's credentials, so which code runs there is the platform's decision.
- **Prometheus** (`prometheus_refusal`): a DriftPolicy may only name a
  Prometheus in the operator's allow-list, compared as exact base URLs, so a
  tenant cannot make the operator send requests anywhere else.
- **Scrape targets** (`scrape_url`): a pod's address and its
  ``prometheus.io/port`` and ``prometheus.io/path`` annotations become a URL
  only when the address is an IP, the port an integer and the path an absolute
  path of plain characters: ``80@169.254.169.254`` or ``//evil`` are refused,
  not followed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ScrapeTarget", "image_refusal", "prometheus_refusal", "scrape_url"]

# Path characters a metrics endpoint needs; no `@`, `?`, `#`, `%`, `\` or whitespace, and
# no `//` (which a client could read as the start of an authority).
_PATH = re.compile(r"^/(?!/)[A-Za-z0-9._~/-]{0,255}$")
_PORT = re.compile(r"^[0-9]{1,5}$")


def image_refusal(image: str, allowed_prefixes: Sequence[str]) -> str | None:
    """Why `image` may not run, or None when it starts with an allowed prefix."""
    if any(prefix and image.startswith(prefix) for prefix in allowed_prefixes):
        return None
    listed = ", ".join(repr(p) for p in allowed_prefixes) or "none"
    return (
        f"image {image!r} is not allowed: the operator runs trainer images starting with one"
        f" of {listed} (its setting allowed_image_prefixes, chart value"
        " policy.allowedImagePrefixes)"
    )


def _normal(url: str) -> str:
    return url.strip().rstrip("/")


def prometheus_refusal(url: str, allowed: Sequence[str]) -> str | None:
    """Why a DriftPolicy may not query `url`, or None when it is in the allow-list."""
    if _normal(url) in {_normal(a) for a in allowed}:
        return None
    listed = ", ".join(allowed) or "none (no Prometheus is configured for the operator)"
    return (
        f"spec.prometheus.url {url!r} is not in the operator's allow-list ({listed}); nothing"
        " was fetched from it. Leave the field empty to use the platform's Prometheus, or ask"
        " the platform team to add it (chart value operator.prometheusAllowedUrls)"
    )


@dataclass(frozen=True)
class ScrapeTarget:
    """A URL to scrape, or why the pod's address or annotations cannot make one."""

    url: str | None
    refusal: str | None = None


def scrape_url(pod_ip: object, port: object, path: object = "/metrics") -> ScrapeTarget:
    """``http://<ip>:<port><path>`` from a pod's IP and its scrape annotations, when all are valid."""
    try:
        address = ipaddress.ip_address(str(pod_ip))
    except ValueError:
        return ScrapeTarget(None, f"pod IP {pod_ip!r} is not an IP address")
    text = str(port).strip()
    if not _PORT.match(text) or not 1 <= int(text) <= 65535:
        return ScrapeTarget(None, f"prometheus.io/port {port!r} is not a port number (1-65535)")
    if not isinstance(path, str) or not _PATH.match(path):
        return ScrapeTarget(
            None,
            f"prometheus.io/path {path!r} is not an absolute path of letters, digits and"
            " ._~/- (no //, @, ?, # or %)",
        )
    host = f"[{address}]" if address.version == 6 else str(address)
    return ScrapeTarget(f"http://{host}:{int(text)}{path}")
