"""Iterating ahead: the next items of a slow producer made on a thread while the consumer works
on the current one (the train import parses the next block while it codes this one)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def iterate_ahead(items: Iterator, ahead: int = 2) -> Iterator:
    """`items`, produced on a thread up to `ahead` items before they are used. An error of the
    producer is raised where the consumer reaches it; leaving the loop stops the producer."""
    ready: queue.Queue = queue.Queue(ahead)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as error:  # handed to the consumer
            put(_Failure(error))

    threading.Thread(target=produce, daemon=True).start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
