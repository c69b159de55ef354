"""Concurrent requests sharing forward passes: whatever runs a network (an ONNX Runtime session,
a torch module on a GPU), as a function of float32 arrays, rows in and rows out."""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np


class _Job:
    def __init__(self, rows: np.ndarray):
        self.rows = rows
        self.done = False
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None


class BatchedForward:
    """Wraps ``forward`` (rows in, rows out) for many threads. A call that finds a pass running
    queues its rows; whichever caller runs next takes every queued row, up to ``max_rows``, into
    one pass. There is no timer: a lone request never waits, and at most one pass runs at a time
    (each already uses all of the runtime's threads, so two at once would only thrash)."""

    def __init__(self, forward: Callable[[np.ndarray], np.ndarray], max_rows: int = 16):
        self._forward = forward
        self._max_rows = max_rows
        self._ready = threading.Condition()
        self._queue: list[_Job] = []
        self._busy = False
        self.passes = 0  # forward passes run, for tests and benchmarks

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        job = _Job(rows)
        with self._ready:
            self._queue.append(job)
            while not job.done:
                if self._busy:
                    self._ready.wait()
                else:
                    self._run_next()
        if job.error is not None:
            raise job.error
        return job.result

    def _run_next(self) -> None:
        """Run the queue's head, as many jobs as fit; called holding the lock, which the pass releases."""
        batch, rows = [], 0
        while self._queue and (not batch or rows + len(self._queue[0].rows) <= self._max_rows):
            batch.append(self._queue.pop(0))
            rows += len(batch[-1].rows)
        self._busy = True
        self._ready.release()
        try:
            self._run(batch)
        finally:
            self._ready.acquire()
            self._busy = False
            self.passes += 1
            self._ready.notify_all()

    def _run(self, batch: list[_Job]) -> None:
        try:
            out = self._forward(np.concatenate([job.rows for job in batch]) if len(batch) > 1 else batch[0].rows)
            for job, part in zip(batch, np.split(out, np.cumsum([len(job.rows) for job in batch])[:-1])):
                job.result = part
        except Exception as exc:  # every caller in the pass gets the error, as if it had run alone
            for job in batch:
                job.error = exc
        for job in batch:
            job.done = True
