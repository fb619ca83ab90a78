"""Iterating ahead: the next items of a slow producer made on a thread while the consumer works
on the current one (an archive is inflated ahead of the CSV parser; the train import parses the
next block while it codes this one)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


class Ahead:
    """The items of `items`, produced on a thread that starts at once and stays up to `ahead`
    items before the consumer. An error of the producer is raised by the `next` that reaches
    it; `close` (or leaving a `with` block) stops the producer."""

    def __init__(self, items: Iterator, ahead: int) -> None:
        self._ready: queue.Queue = queue.Queue(ahead)
        self._stop = threading.Event()
        self._ended = False
        threading.Thread(target=self._produce, args=(items,), daemon=True).start()

    def _produce(self, items: Iterator) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as error:  # handed to the consumer
            self._put(_Failure(error))

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Ahead:
        return self

    def __next__(self):
        if self._ended:
            raise StopIteration
        item = self._ready.get()
        if item is _DONE or isinstance(item, _Failure):
            self._ended = True
        if item is _DONE:
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.error
        return item

    def close(self) -> None:
        self._stop.set()

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
