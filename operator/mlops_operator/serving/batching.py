"""Dynamic micro-batching: concurrent requests merged into one onnxruntime call.

A request's validated rows join a queue and its handler awaits a future. One
task per worker drains the queue: it takes whatever is queued (after yielding
once so that requests parsed in the same loop iteration join), or, with a delay
configured, waits that long for more, up to a row cap. One batch runs at a time;
while it runs (in a thread, releasing the GIL), the event loop keeps parsing, so
the next batch forms by itself under load and a lone request pays no delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops_operator.serving.metrics import ServingMetrics
from mlops_operator.serving.model import ServedModel
from mlops_operator.serving.validation import Batch

__all__ = ["MicroBatcher"]

log = logging.getLogger(__name__)

Outputs = list[npt.NDArray[Any]]


@dataclass(frozen=True)
class _Pending:
    batch: Batch
    future: asyncio.Future[Outputs]


class MicroBatcher:
    """Merges concurrent predictions of one model into batched onnxruntime calls."""

    def __init__(
        self,
        model: ServedModel,
        metrics: ServingMetrics,
        *,
        max_rows: int,
        delay_seconds: float,
        offload: bool,
    ) -> None:
        self._model = model
        self._metrics = metrics
        self._max_rows = max_rows
        self._delay = delay_seconds
        self._executor = (
            ThreadPoolExecutor(1, thread_name_prefix="onnxruntime") if offload else None
        )
        self._queue: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the batching task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop after every queued request has been answered."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def predict(self, batch: Batch) -> Outputs:
        """The model's outputs for ``batch``, computed together with concurrent requests."""
        future: asyncio.Future[Outputs] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(batch, future))
        self._wakeup.set()
        return await future

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                await asyncio.sleep(self._delay)
                taken = self._take()
                await self._execute(taken)

    def _take(self) -> list[_Pending]:
        taken = [self._queue.popleft()]
        rows = taken[0].batch.rows
        while self._queue and rows + self._queue[0].batch.rows <= self._max_rows:
            pending = self._queue.popleft()
            taken.append(pending)
            rows += pending.batch.rows
        return taken

    async def _execute(self, taken: list[_Pending]) -> None:
        if len(taken) == 1:
            feeds = taken[0].batch.feeds
        else:
            feeds = {
                name: np.concatenate([p.batch.feeds[name] for p in taken])
                for name in taken[0].batch.feeds
            }
        try:
            outputs = await self._run(feeds)
        except Exception as error:
            if len(taken) > 1:
                # Isolate the request that broke the batch so the others still get answers.
                for pending in taken:
                    await self._execute([pending])
                return
            log.exception("onnxruntime failed on a validated request")
            if not taken[0].future.done():
                taken[0].future.set_exception(error)
            return
        start = 0
        for pending in taken:
            end = start + pending.batch.rows
            if not pending.future.done():  # the client may have gone away
                pending.future.set_result([output[start:end] for output in outputs])
            start = end
        # Let the handlers answer before spending time on metrics.
        await asyncio.sleep(0)
        self._metrics.observe_batch(feeds, outputs[0], [p.batch.rows for p in taken])

    async def _run(self, feeds: dict[str, npt.NDArray[Any]]) -> Outputs:
        if self._executor is None:
            return self._model.run(feeds)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._model.run, feeds)
