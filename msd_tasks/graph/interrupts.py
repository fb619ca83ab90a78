"""SIGINT and SIGTERM during a build: it stops, exits by that signal, and never half-publishes.

`install()` (called by BuildAll.requires, in the process that schedules the build) makes both
signals raise `BuildInterrupted`, a KeyboardInterrupt: Luigi lets those through, its worker
terminates the task processes, and they (forked, they inherit all this) clean up in their
`finally` blocks. What makes "at any moment" true:

- Where an exception would be lost (Luigi's `trigger_event` returns on KeyboardInterrupt) or
  would do harm (a task process flushing its result to the scheduling process), the signal
  waits, and is raised once that code is left, by a SIGALRM a moment later.
- A task process forked after the build was interrupted ends at once, by that signal, before it
  starts its task: an interrupt lost anyway cannot let the build run on into a new publish.
- A task process raises once; later signals (Luigi's SIGTERM after the process group's signal)
  would only break its cleanup or the flush of its result. If it has not ended `STOP_SECONDS`
  after the first, it is ended (stuck in C code, where no Python handler runs; Luigi waits for
  its task processes without a limit).
- At exit, the scheduling process ends by the signal it received (atexit), so the shell sees
  130 or 143 whatever swallowed the exception (a KeyboardInterrupt subclass reaching the top
  exits 1, not 130); from then on a signal ends it at once.

`deferred()` makes both signals wait for the end of a block (the publish switch) in any process,
installed or not.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import multiprocessing.util
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import CodeType, FrameType

import luigi.scheduler
import luigi.task

SIGNALS = (signal.SIGINT, signal.SIGTERM)
RETRY_SECONDS = 0.01  # how soon a signal that had to wait is raised again
STOP_SECONDS = 30  # the most an interrupted task process may take to end


class BuildInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: Luigi's `except KeyboardInterrupt: raise` paths let it through."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"build interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@dataclass
class _State:
    installed_in: int | None = None  # the scheduling process; its task processes inherit this
    received: int | None = None  # the first signal, received here or by the parent before a fork
    pending: int | None = None  # a signal that could not be raised yet
    holding: int = 0  # depth of deferred(): signals wait
    waits_in: set[CodeType] = field(
        default_factory=lambda: {
            function.__code__
            for function in (
                luigi.task.Task.trigger_event,  # except KeyboardInterrupt: return
                # except BaseException (private: looked up softly, luigi is pinned anyway)
                getattr(luigi.scheduler.Scheduler, "_update_task_history", None),
                # A task process flushing its result queue: ended there, it would leave the
                # queue's lock taken, and every other task process would hang at its exit.
                getattr(multiprocessing.util, "_exit_function", None),
            )
            if function is not None
        }
    )


_state = _State()


def install() -> bool:
    """Handle SIGINT and SIGTERM as described above; False off the main thread (not possible).

    Once per process: children forked later inherit it all. A signal the process was started
    with ignored stays ignored (a shell starts background jobs ignoring SIGINT).
    """
    if _state.installed_in is not None:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    for signum in (*SIGNALS, signal.SIGALRM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _on_signal)
    atexit.register(_exit_by_signal)
    os.register_at_fork(after_in_child=_after_fork_in_child)
    _state.installed_in = os.getpid()
    return True


def check() -> None:
    """Raise BuildInterrupted if this process was interrupted (and the exception was lost)."""
    if _state.received is not None:
        raise BuildInterrupted(_state.received)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait for the end of the block, then take effect.

    Where `install()` was not called, the handlers are swapped for the block only, and a signal
    that waited is sent again after them, to the previous handler (or default action). Python
    runs signal handlers in the main thread only; in another thread the block is not protected.
    (Blocking the signals with pthread_sigmask would not do: the mask is per thread, and any
    other thread of the process - a queue feeder, a thread pool - would take the signal.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    swapped = {}
    for signum in SIGNALS:
        if signal.getsignal(signum) is not _on_signal:
            swapped[signum] = signal.signal(signum, _on_signal)
    _state.holding += 1
    try:
        yield
    finally:
        _state.holding = max(_state.holding - 1, 0)
        for signum, previous in swapped.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        pending = _state.pending
        if not _state.holding and pending is not None:
            _state.pending = None
            if pending in swapped:
                os.kill(os.getpid(), pending)
            else:
                raise BuildInterrupted(pending)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGALRM:  # the retry of a signal that had to wait
        signum = _state.pending
        if signum is None:
            return
    elif _state.installed_in is not None:
        task_process = os.getpid() != _state.installed_in
        if _state.received is not None and task_process:
            return  # already stopping
        if _state.received is None:
            _state.received = signum
            if task_process:
                faulthandler.dump_traceback_later(STOP_SECONDS, exit=True)
    if _state.holding:
        _state.pending = signum  # the end of deferred() takes it from here
        return
    if _waits_at(frame):
        _state.pending = signum
        _retry_soon()
        return
    _state.pending = None
    raise BuildInterrupted(signum)


def _waits_at(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code in _state.waits_in:
            return True
        frame = frame.f_back
    return False


def _retry_soon() -> None:
    if signal.getsignal(signal.SIGALRM) is _on_signal:  # only where install() set it
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)


def _after_fork_in_child() -> None:
    _state.holding = 0  # the parent's deferred block is not the child's
    _state.pending = None
    if _state.received is not None:
        _die_by(_state.received)


def _exit_by_signal() -> None:
    """atexit: end by the signal received, if any; from here on a signal ends the process."""
    if os.getpid() != _state.installed_in:
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    for signum in SIGNALS:
        if signal.getsignal(signum) is _on_signal:
            signal.signal(signum, signal.SIG_DFL)
    if _state.received is not None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        _die_by(_state.received)


def _die_by(signum: int) -> None:
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # not reached: the default action of both signals ends the process
