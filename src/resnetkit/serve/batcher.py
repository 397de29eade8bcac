"""Dynamic batching: requests arriving close together share one forward pass.

Request threads ``submit`` their decoded images and wait on a ``Future``. One worker thread
takes the oldest request, then keeps collecting until the batch holds ``max_batch`` images or
``max_wait`` seconds have passed since that first request arrived, runs ``predict`` once on
all of them and hands each request its rows. A request larger than ``max_batch`` runs alone;
one that would overflow the batch waits for the next. With ``max_batch=1`` every request runs
on its own (batching off).

The worker is the only thread that calls ``predict``, so a runtime that is not thread-safe
(the LiteRT interpreter) needs nothing more.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np


class Overloaded(RuntimeError):
    """The queue of waiting requests is full."""


@dataclass
class _Request:
    images: list[np.ndarray]
    future: Future
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """Collects requests into batches for ``predict(images) -> rows`` on a worker thread."""

    def __init__(
        self,
        predict: Callable[[list[np.ndarray]], np.ndarray],
        *,
        max_batch: int = 32,
        max_wait: float = 0.005,
        max_queue: int = 1024,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1; got {max_batch}")
        if max_wait < 0:
            raise ValueError(f"max_wait must not be negative; got {max_wait}")
        self.predict = predict
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait)
        self._queue: queue.Queue[_Request | None] = queue.Queue(max_queue)
        self._carry: _Request | None = None  # taken from the queue, goes first next time
        self._lock = threading.Lock()
        self.batches = 0
        self.images = 0
        self.largest = 0
        self._thread = threading.Thread(target=self._work, name="batcher", daemon=True)
        self._thread.start()

    def submit(self, images: list[np.ndarray]) -> Future:
        """Queue images for prediction; the future's result is one row per image."""
        request = _Request(list(images), Future())
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            raise Overloaded(f"{self._queue.maxsize} requests are already waiting") from None
        return request.future

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def stats(self) -> dict:
        with self._lock:
            return {
                "batches": self.batches,
                "images": self.images,
                "mean_batch_size": round(self.images / self.batches, 2) if self.batches else 0,
                "largest_batch": self.largest,
                "waiting_requests": self.waiting,
            }

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker after the requests already queued."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _next_batch(self) -> list[_Request] | None:
        first = self._carry or self._queue.get()
        self._carry = None
        if first is None:
            return None
        batch, count = [first], len(first.images)
        deadline = first.arrived + self.max_wait
        while count < self.max_batch:
            remaining = deadline - time.monotonic()
            try:  # past the deadline, still take what is already waiting
                if remaining > 0:
                    item = self._queue.get(timeout=remaining)
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # close(): finish this batch, then stop
                self._queue.put(None)
                break
            if count + len(item.images) > self.max_batch:
                self._carry = item
                break
            batch.append(item)
            count += len(item.images)
        return batch

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            images = [im for r in batch for im in r.images]
            try:
                rows = self.predict(images)
            except Exception as e:  # every waiting request learns why; the worker goes on
                for r in batch:
                    r.future.set_exception(e)
                continue
            with self._lock:
                self.batches += 1
                self.images += len(images)
                self.largest = max(self.largest, len(images))
            start = 0
            for r in batch:
                r.future.set_result(rows[start : start + len(r.images)])
                start += len(r.images)
