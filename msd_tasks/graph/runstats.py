"""Wall time and peak resident memory of a task's run, for run.json and the build report."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psutil

SAMPLE_SECONDS = 0.1


@dataclass
class RunStats:
    wall_seconds: float = 0.0
    peak_rss_bytes: int = 0
    pid: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "wall_seconds": round(self.wall_seconds, 3),
            "peak_rss_bytes": self.peak_rss_bytes,
            "pid": self.pid,
        }


@contextlib.contextmanager
def measured() -> Iterator[RunStats]:
    """Measure the block: wall time, and this process's RSS sampled every 100 ms."""
    process = psutil.Process()
    stats = RunStats(pid=process.pid, peak_rss_bytes=process.memory_info().rss)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_SECONDS):
            stats.peak_rss_bytes = max(stats.peak_rss_bytes, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    try:
        yield stats
    finally:
        stop.set()
        sampler.join()
        stats.peak_rss_bytes = max(stats.peak_rss_bytes, process.memory_info().rss)
        stats.wall_seconds = time.perf_counter() - start
