"""Lock-free counters for the request path: one float64 slot per sample, in shared memory.

prometheus_client takes a lock per increment, and in multiprocess mode packs each value
into an mmap'd file through ``struct`` under that lock: several microseconds per request
for the ~90 series a model exports, and a lock the onnxruntime thread contends for. The
series that move on every request or batch (requests, latency, rows, feature and
prediction bins) live here instead: a catalogue lays every series out as slots of one
float64 array, identical in every worker because it is derived from the model card and
the fixed catalogues, and an observation is ``slots[i] += value``, one store, no lock
(one event loop thread writes a worker's array; an aligned 8-byte store is atomic, so a
scrape never sees a torn value).

With several workers (``PROMETHEUS_MULTIPROC_DIR`` set, as the supervisor does) each
worker's array is an mmap'd file ``hot_<pid>.db`` in that folder and a scrape sums every
file of the same layout, so any worker answers for all of them, the way
prometheus_client's multiprocess collector merges its files.
"""

from __future__ import annotations

import logging
import mmap
import os
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["Family", "Histogram", "SlotCounters"]

log = logging.getLogger(__name__)

_FILE_PREFIX = "hot_"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_text(labels: Sequence[tuple[str, str]]) -> str:
    """``{a="x",b="y"}`` with exposition-format escaping."""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


@dataclass
class Family:
    """A counter family: one slot per label set, rendered as ``<name>_total``."""

    name: str
    help: str
    series: list[tuple[str, int]] = field(default_factory=list)  # (label text, slot)
    # Counters that only appear once they count something (requests by endpoint and outcome).
    lazy: bool = False


@dataclass
class Histogram:
    """One histogram series: a slot per bucket (``+Inf`` last), then one for the sum."""

    labels: list[tuple[str, str]]
    bounds: tuple[float, ...]
    first: int
    lazy: bool = False

    @property
    def sum_slot(self) -> int:
        """The slot of the observations' sum (after the buckets and ``+Inf``)."""
        return self.first + len(self.bounds) + 1

    def observe(self, slots: memoryview[float], value: float, count: int = 1) -> None:
        """``count`` observations of ``value``."""
        slots[self.first + bisect_left(self.bounds, value)] += count
        slots[self.sum_slot] += value * count

    def observe_all(self, slots: memoryview[float], values: list[int]) -> None:
        """An observation of each value: one per distinct value (row counts repeat a lot)."""
        if values and values.count(values[0]) == len(values):  # all alike: no Counter built
            self.observe(slots, values[0], len(values))
            return
        for value, count in Counter(values).items():
            self.observe(slots, value, count)


class SlotCounters:
    """The slot array of one worker and the catalogue that names its slots."""

    def __init__(self) -> None:
        self.size = 0
        self.families: list[Family] = []
        self.histograms: dict[str, tuple[str, list[Histogram]]] = {}
        self._array: npt.NDArray[np.float64] | None = None
        self._folder: Path | None = None
        self._mmap: mmap.mmap | None = None
        self.slots: memoryview[float] = memoryview(b"").cast("d")

    def allocate(self, count: int) -> int:
        """Reserve ``count`` consecutive slots; their first index."""
        if self._array is not None:
            raise RuntimeError("slots are allocated before the counters are opened")
        first = self.size
        self.size += count
        return first

    def family(self, name: str, help_text: str, *, lazy: bool = False) -> Family:
        """A new counter family (series added with :meth:`counter`)."""
        created = Family(name, help_text, lazy=lazy)
        self.families.append(created)
        return created

    def counter(self, family: Family, labels: Sequence[tuple[str, str]]) -> int:
        """A slot for one series of ``family``."""
        slot = self.allocate(1)
        family.series.append((label_text(labels), slot))
        return slot

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Sequence[tuple[str, str]],
        bounds: Sequence[float],
        *,
        lazy: bool = False,
    ) -> Histogram:
        """One histogram series (buckets, ``+Inf`` and sum) of the family ``name``."""
        created = Histogram(list(labels), tuple(bounds), self.allocate(len(bounds) + 2), lazy)
        self.histograms.setdefault(name, (help_text, []))[1].append(created)
        return created

    def open(self, multiprocess_dir: str | None) -> None:
        """Create the array: in memory, or a file of its own in ``multiprocess_dir``."""
        nbytes = max(8, self.size * 8)
        if multiprocess_dir:
            self._folder = Path(multiprocess_dir)
            path = self._folder / f"{_FILE_PREFIX}{os.getpid()}.db"
            with path.open("wb+") as handle:
                handle.truncate(nbytes)
                self._mmap = mmap.mmap(handle.fileno(), nbytes)
            self._array = np.frombuffer(self._mmap, dtype=np.float64)
        else:
            self._array = np.zeros(self.size or 1, dtype=np.float64)
        self.slots = memoryview(self._array.data).cast("B").cast("d")

    @property
    def array(self) -> npt.NDArray[np.float64]:
        """This worker's slots as a numpy array (vectorised increments)."""
        assert self._array is not None, "open() the counters first"
        return self._array

    def totals(self) -> npt.NDArray[np.float64]:
        """Every worker's slots summed (this worker's alone when not multiprocess)."""
        if self._folder is None:
            return self.array.copy()
        total = np.zeros(self.size, dtype=np.float64)
        for path in self._folder.glob(f"{_FILE_PREFIX}*.db"):
            try:
                values = np.fromfile(path, dtype=np.float64)
            except OSError:
                continue  # a file being created
            if len(values) == self.size:
                total += values
            else:
                log.warning("ignoring %s: its layout is not this model's", path)
        return total

    def render(self) -> bytes:
        """The exposition text (format 0.0.4) of every family and histogram."""
        values = self.totals()
        lines: list[str] = []
        for family in self.families:
            series = [
                (t, float(values[s])) for t, s in family.series if not family.lazy or values[s]
            ]
            if family.lazy and not series:
                continue
            lines.append(f"# HELP {family.name}_total {family.help}")
            lines.append(f"# TYPE {family.name}_total counter")
            lines.extend(f"{family.name}_total{text} {value!r}" for text, value in series)
        for name, (help_text, histograms) in self.histograms.items():
            shown = [
                h
                for h in histograms
                if not h.lazy or values[h.first : h.first + len(h.bounds) + 1].any()
            ]
            if not shown:
                continue
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} histogram")
            for histogram in shown:
                lines.extend(_histogram_lines(name, histogram, values))
        lines.append("")
        return "\n".join(lines).encode()


def _histogram_lines(
    name: str, histogram: Histogram, values: npt.NDArray[np.float64]
) -> Iterable[str]:
    first, count = histogram.first, len(histogram.bounds)
    cumulative = np.cumsum(values[first : first + count + 1]).tolist()
    bounds = [*(repr(float(b)) for b in histogram.bounds), "+Inf"]
    for bound, total in zip(bounds, cumulative, strict=True):
        yield f"{name}_bucket{label_text([*histogram.labels, ('le', bound)])} {float(total)!r}"
    labels = label_text(histogram.labels)
    yield f"{name}_count{labels} {float(cumulative[-1])!r}"
    yield f"{name}_sum{labels} {float(values[first + count + 1])!r}"
