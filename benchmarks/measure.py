"""Run a command and measure it from the operating system: wall time and process-tree memory.

Peak memory is the largest sum of resident memory over the process and all its descendants,
sampled every 100 ms with psutil; each process's own peak is kept too, so a Luigi worker
process can be matched with the task it ran.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field

import psutil

SAMPLE_SECONDS = 0.1


@dataclass
class Measurement:
    returncode: int
    wall_seconds: float
    peak_tree_bytes: int
    peak_by_pid: dict[int, int] = field(default_factory=dict)
    output_lines: list[tuple[float, str]] = field(default_factory=list)  # (seconds, stderr line)


def _tree_rss(root: psutil.Process, peaks: dict[int, int]) -> int:
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for process in processes:
        try:
            rss = process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
        peaks[process.pid] = max(peaks.get(process.pid, 0), rss)
        total += rss
    return total


def measure(command: list[str], cwd=None, env=None) -> Measurement:
    """Run `command`, sampling its process tree until it exits; stderr lines are timestamped."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: list[tuple[float, str]] = []

    def read_stderr() -> None:
        for line in process.stderr:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    root = psutil.Process(process.pid)
    exited = threading.Event()
    ended_at: list[float] = []

    def wait_for_exit() -> None:
        process.wait()
        ended_at.append(time.perf_counter())
        exited.set()

    # The exit is timed by a thread blocked in wait(), not by the sampling loop, whose
    # 100 ms steps would add up to 100 ms to every wall time.
    waiter = threading.Thread(target=wait_for_exit, daemon=True)
    waiter.start()
    peaks: dict[int, int] = {}
    peak = 0
    while not exited.is_set():
        peak = max(peak, _tree_rss(root, peaks))
        exited.wait(SAMPLE_SECONDS)
    waiter.join()
    wall = ended_at[0] - start
    reader.join(timeout=10)
    return Measurement(process.returncode, wall, peak, peaks, lines)
