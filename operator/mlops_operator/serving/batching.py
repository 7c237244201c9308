"""Dynamic micro-batching: concurrent requests merged into one onnxruntime call.

A request's validated rows join a queue and its handler awaits a future. The first
request to join an idle queue schedules a flush with ``call_soon`` (or ``call_later``
with a delay configured), so every handler the event loop runs in the same turn joins
before it fires: under load, whatever arrived together is one call. No task, no event,
no extra turns between the handler and the model.

A request that is alone (nothing queued or running, no other request handled in this
turn of the loop, no batch delay configured) is not queued at all when the model runs on
the loop: its handler calls the model at once, and is answered without waiting a turn for
a flush and another for its own wake-up. The second request handled in a turn finds the
first one's mark and queues, so concurrent requests still share calls. The mark is
cleared by a callback scheduled behind the turn's handlers.

Where the model runs depends on what it costs. A cheap model (a row in well under
:data:`OFFLOAD_ABOVE_SECONDS`) runs in the flush itself, on the event loop: handing it
to a thread costs two wake-ups and a GIL hand-over, more than the model. An expensive
one runs in a one-thread executor (onnxruntime releases the GIL), so the loop keeps
parsing the next batch meanwhile; one batch runs at a time and the next is taken the
moment it ends.

Calls are observed together, off the answers' path: each call's feeds and outputs are
kept (list appends) and the ``observe`` hook gets the kept calls merged, once
:data:`OBSERVE_ROWS` rows are kept or ``observe_delay_seconds`` after the first, with
each request's id and row count and each call's rows (the server counts drift and records
predictions for labels there). Counting 64 rows at once costs about what counting one
does, so a lone request no longer pays for its own count. The kept arrays are merged by
joining their bytes (numbers) rather than ``np.concatenate``, whose per-array checks
cost four times as much for hundreds of one-row calls. :meth:`MicroBatcher.observe_now`
observes what is kept at once (before a ``/metrics`` scrape, and at stop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops_operator.serving.model import NUMPY_DTYPES, ServedModel
from mlops_operator.serving.validation import Batch

__all__ = ["OFFLOAD_ABOVE_SECONDS", "MicroBatcher", "Observer", "one_row_seconds"]

log = logging.getLogger(__name__)

OFFLOAD_ABOVE_SECONDS = 100e-6
"""A model whose one-row call takes longer runs in a thread (``offload_inference`` unset)."""

OBSERVE_ROWS = 256
"""Kept calls are observed once they hold this many rows, or ``observe_delay_seconds`` after
the first of them ran."""

Outputs = list[npt.NDArray[Any]]
Feeds = dict[str, npt.NDArray[Any]]
Observer = Callable[[Feeds, Outputs, list[str], list[int], list[int]], None]
"""Called with calls' feeds and outputs merged, each request's id and rows, each call's rows."""


@dataclass(slots=True)
class _Pending:
    batch: Batch
    request_id: str
    future: asyncio.Future[Outputs]
    alone: bool = field(default=False)  # retried by itself after its batch failed


_SURELY_COSTLY_SECONDS = 0.1
"""A call this slow settles the question at once: timing 27 of a model that takes seconds a
call would keep the server from listening for minutes (its liveness probe would kill it)."""


def one_row_seconds(model: ServedModel, runs: int = 25) -> float:
    """The shortest of ``runs`` one-row calls (after warming the session up), in seconds; the
    first call's time when it is slower than `_SURELY_COSTLY_SECONDS`.

    The shortest, not the median: on a busy machine preemption only ever adds time, and a
    median taken while other processes ran once sent a 15 µs model to a thread.
    """
    feeds = {
        name: np.full(
            [1 if d is None else d for d in spec.shape],
            "" if spec.dtype == "string" else 0,
            dtype=NUMPY_DTYPES[spec.dtype],
        )
        for name, spec in model.inputs.items()
    }
    started = time.perf_counter()
    model.run(feeds)
    first = time.perf_counter() - started
    if first > _SURELY_COSTLY_SECONDS:
        return first
    for _ in range(2):
        model.run(feeds)
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        model.run(feeds)
        durations.append(time.perf_counter() - started)
    return min(durations)


def _stacked(arrays: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """The arrays one after the other (axis 0), as ``np.concatenate`` would give them.

    Kept calls are calls onnxruntime took or gave, so an input's (an output's) arrays share
    one dtype and trailing shape: numbers are merged by joining their bytes, a C-level copy
    per array; strings (objects, no buffer) and any array whose memory is not one C-ordered
    block take ``np.concatenate``.
    """
    first = arrays[0]
    if not first.dtype.hasobject:
        try:
            # ndarrays export their buffer (numpy's stubs declare it from Python 3.12 on).
            joined = b"".join(arrays)  # type: ignore[arg-type]
        except (BufferError, TypeError, ValueError):  # not C-contiguous
            pass
        else:
            return np.frombuffer(joined, first.dtype).reshape(-1, *first.shape[1:])
    return np.concatenate(arrays)


class MicroBatcher:
    """Merges concurrent predictions of one model into batched onnxruntime calls."""

    def __init__(
        self,
        model: ServedModel,
        observe: Observer,
        *,
        max_rows: int,
        delay_seconds: float,
        offload: bool | None,
        observe_delay_seconds: float = 0.05,
    ) -> None:
        self._model = model
        self._observe = observe
        self._observe_delay = observe_delay_seconds
        self._max_rows = max_rows
        self._delay = delay_seconds
        self._offload = offload
        self._executor: ThreadPoolExecutor | None = None
        self._queue: deque[_Pending] = deque()
        self._scheduled = False
        self._running = False
        self._turn_taken = False  # a request was answered alone in this turn of the loop
        # Calls not observed yet: their feeds and outputs, each request's id and rows, each
        # call's rows (flat lists: observing them needs no regrouping).
        self._kept_feeds: list[Feeds] = []
        self._kept_outputs: list[Outputs] = []
        self._kept_ids: list[str] = []
        self._kept_rows: list[int] = []
        self._kept_calls: list[int] = []
        self._unobserved_rows = 0
        self._observe_timer: asyncio.TimerHandle | None = None
        self._observe_soon = False
        self._idle: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def offloaded(self) -> bool:
        """Whether onnxruntime runs in a thread (decided at :meth:`start` when unset)."""
        return self._executor is not None

    def start(self) -> None:
        """Bind to the running loop; measure the model when ``offload`` was left to us."""
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        offload = self._offload
        if offload is None:
            try:
                seconds = one_row_seconds(self._model)
            except Exception:  # onnxruntime rejects the synthetic row
                log.warning(
                    "cannot time a one-row call; onnxruntime runs in a thread", exc_info=True
                )
                seconds = float("inf")
            offload = seconds > OFFLOAD_ABOVE_SECONDS
            log.info(
                "one row takes %.0f µs: onnxruntime runs %s",
                seconds * 1e6,
                "in a thread" if offload else "on the event loop",
            )
        if offload:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="onnxruntime")

    async def stop(self) -> None:
        """Stop after every queued request has been answered."""
        while self._queue or self._running:
            assert self._idle is not None
            self._idle.clear()
            if not self._scheduled and not self._running:
                self._flush()
            if self._running or self._queue:
                await self._idle.wait()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self.observe_now()

    async def predict(self, batch: Batch, request_id: str) -> Outputs:
        """The model's outputs for ``batch``, computed together with concurrent requests."""
        outputs = self.submit(batch, request_id)
        return outputs if isinstance(outputs, list) else await outputs

    def submit(self, batch: Batch, request_id: str) -> Outputs | asyncio.Future[Outputs]:
        """:meth:`predict` without its coroutine: the outputs at once when the request is
        alone (the module docstring), else a future of them.

        The caller awaits only what has to wait (the server's deadline is armed for those
        alone: a request answered at once has nothing it could be interrupted in).
        """
        loop = self._loop
        assert loop is not None, "start() the batcher first"
        if not (
            self._turn_taken
            or self._queue
            or self._scheduled
            or self._running
            or self._delay
            or self._executor is not None
        ):
            # Alone: run now, on the loop, and mark the turn as taken.
            self._turn_taken = True
            try:
                outputs = self._model.run(batch.feeds)
            except Exception:
                log.exception("onnxruntime failed on a validated request")
                raise
            finally:
                loop.call_soon(self._clear_turn)
            self._keep(batch.feeds, outputs, (request_id,), (batch.rows,))
            return outputs
        future: asyncio.Future[Outputs] = loop.create_future()
        self._queue.append(_Pending(batch, request_id, future))
        if not self._scheduled and not self._running:
            self._scheduled = True
            if self._delay:
                loop.call_later(self._delay, self._flush)
            else:
                loop.call_soon(self._flush)
        return future

    def _clear_turn(self) -> None:
        self._turn_taken = False

    def _keep(
        self, feeds: Feeds, outputs: Outputs, request_ids: Sequence[str], rows: Sequence[int]
    ) -> None:
        """Keep a call for the next observation, and schedule it."""
        self._kept_feeds.append(feeds)
        self._kept_outputs.append(outputs)
        self._kept_ids.extend(request_ids)
        self._kept_rows.extend(rows)
        call_rows = len(outputs[0])
        self._kept_calls.append(call_rows)
        self._unobserved_rows += call_rows
        if self._unobserved_rows >= OBSERVE_ROWS:
            if not self._observe_soon:
                self._observe_soon = True
                assert self._loop is not None
                self._loop.call_soon(self.observe_now)  # after the handlers answered in this turn
        elif self._observe_timer is None:
            assert self._loop is not None
            self._observe_timer = self._loop.call_later(self._observe_delay, self.observe_now)

    def observe_now(self) -> None:
        """Observe the calls kept so far, merged, with one call of the ``observe`` hook."""
        self._observe_soon = False
        if self._observe_timer is not None:
            self._observe_timer.cancel()
            self._observe_timer = None
        feeds, outputs = self._kept_feeds, self._kept_outputs
        if not feeds:
            return
        ids, rows, calls = self._kept_ids, self._kept_rows, self._kept_calls
        self._kept_feeds, self._kept_outputs = [], []
        self._kept_ids, self._kept_rows, self._kept_calls = [], [], []
        self._unobserved_rows = 0
        if len(feeds) == 1:
            self._observe(feeds[0], outputs[0], ids, rows, calls)
            return
        self._observe(
            {name: _stacked([call[name] for call in feeds]) for name in feeds[0]},
            [_stacked([call[i] for call in outputs]) for i in range(len(outputs[0]))],
            ids,
            rows,
            calls,
        )

    def _flush(self) -> None:
        self._scheduled = False
        if self._running or not self._queue:
            return
        taken = self._take()
        try:
            feeds = self._feeds(taken)
            if self._executor is not None:
                self._submit(self._executor, taken, feeds)
                return
            outputs = self._model.run(feeds)
        except Exception as error:  # noqa: BLE001 - isolated by _failed, logged when alone
            self._failed(taken, error)
        else:
            self._deliver(taken, feeds, outputs)
        self._next()

    def _submit(
        self, executor: ThreadPoolExecutor, taken: list[_Pending], feeds: dict[str, Any]
    ) -> None:
        job = executor.submit(self._model.run, feeds)
        self._running = True
        loop = self._loop
        assert loop is not None
        job.add_done_callback(lambda done: loop.call_soon_threadsafe(self._ran, taken, feeds, done))

    def _ran(self, taken: list[_Pending], feeds: dict[str, Any], job: Future[Outputs]) -> None:
        self._running = False
        error = job.exception()
        if error is not None:
            self._failed(taken, error)
        else:
            self._deliver(taken, feeds, job.result())
        self._next()

    def _next(self) -> None:
        """Take what queued meanwhile, or tell a waiting ``stop`` that all is answered."""
        if not self._queue:
            if self._idle is not None:
                self._idle.set()
        elif self._executor is not None:
            self._flush()  # the thread is free: at once
        elif not self._scheduled:
            # On the loop: the handlers just answered run first.
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _take(self) -> list[_Pending]:
        taken = [self._queue.popleft()]
        if taken[0].alone:
            return taken
        rows = taken[0].batch.rows
        while (
            self._queue
            and not self._queue[0].alone
            and rows + self._queue[0].batch.rows <= self._max_rows
        ):
            pending = self._queue.popleft()
            taken.append(pending)
            rows += pending.batch.rows
        return taken

    @staticmethod
    def _feeds(taken: list[_Pending]) -> Feeds:
        if len(taken) == 1:
            return taken[0].batch.feeds
        return {
            name: np.concatenate([p.batch.feeds[name] for p in taken])
            for name in taken[0].batch.feeds
        }

    def _failed(self, taken: list[_Pending], error: BaseException) -> None:
        if len(taken) > 1:
            # Isolate the request that broke the batch so the others still get answers.
            for pending in reversed(taken):
                pending.alone = True
                self._queue.appendleft(pending)
            return
        log.error("onnxruntime failed on a validated request", exc_info=error)
        if not taken[0].future.done():
            taken[0].future.set_exception(error)

    def _deliver(self, taken: list[_Pending], feeds: dict[str, Any], outputs: Outputs) -> None:
        if len(taken) == 1:
            if not taken[0].future.done():  # the client may have gone away
                taken[0].future.set_result(outputs)
        else:
            start = 0
            for pending in taken:
                end = start + pending.batch.rows
                if not pending.future.done():
                    pending.future.set_result([output[start:end] for output in outputs])
                start = end
        self._keep(feeds, outputs, [p.request_id for p in taken], [p.batch.rows for p in taken])
