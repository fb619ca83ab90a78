"""SIGINT and SIGTERM at any moment of a build: it exits by that signal (never 0), and the published
set is the previous one, or a complete one that matches its manifest (msd_tasks/interrupts.py).

The mechanisms run first in scripts of their own (a fresh interpreter each, keeping signal
handlers and fork hooks out of the pytest process); then real `luigi --module ... BuildAll`
processes (tests/luigid.py) get a signal sent to their process group at moments spread over a
rebuild, each chosen by an event on disk, not by a sleep.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
from luigi.configuration import get_config
from luigi.task_register import Register

from msd_tasks.formats import raw
from msd_tasks.formats.metrics import FILE_NAME as METRICS
from msd_tasks.graph.base import graph_tasks
from msd_tasks.graph.build import DELIVERABLES, Publish
from msd_tasks.graph.interrupts import STOP_SECONDS

if TYPE_CHECKING:
    from tests.luigid import Build, Run


REPO = Path(__file__).resolve().parent.parent
SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {signal.SIGINT: {-2, 130}, signal.SIGTERM: {-15, 143}}


@pytest.fixture(autouse=True)
def _sigint_not_ignored():
    """The processes started here get SIGINT's default action, as from a terminal, even when
    pytest runs as a background job (which ignores SIGINT, and its children inherit that)."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_script(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,  # the assertions show the exit code and stderr
    )


# A library that swallows the interrupt: the process still exits by the signal, and a task
# process forked after it never runs its task.
SWALLOWED_SCRIPT = """
import multiprocessing, os, signal, sys, time
from msd_tasks.graph import interrupts

interrupts.install()
try:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
except BaseException:  # as some code does
    pass
worker = multiprocessing.get_context("fork").Process(target=print, args=("the task ran",))
worker.start()
worker.join()
print("task process exit code", worker.exitcode, flush=True)
sys.exit(0)
"""


def test_a_swallowed_interrupt_still_stops_new_tasks_and_sets_the_exit_status():
    done = run_script(SWALLOWED_SCRIPT)
    assert done.returncode == -signal.SIGTERM, done
    assert done.stdout == f"task process exit code {-signal.SIGTERM}\n", done


# Luigi's trigger_event returns quietly on KeyboardInterrupt: an interrupt in an event callback
# waits, and is raised once the event is over.
EVENT_SCRIPT = """
import os, signal, time
import luigi
from msd_tasks.graph import interrupts

class Stage(luigi.Task):
    pass

@Stage.event_handler(luigi.Event.START)
def started(task):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.5)
    print("callback finished", flush=True)

interrupts.install()
try:
    Stage().trigger_event(luigi.Event.START, Stage())
    print("event over", flush=True)
    time.sleep(2)
    print("interrupt lost", flush=True)
except interrupts.BuildInterrupted:
    print("raised after the event", flush=True)
"""


def test_an_interrupt_in_a_luigi_event_callback_is_raised_after_the_event():
    done = run_script(EVENT_SCRIPT)
    assert done.returncode == -signal.SIGINT, done
    assert done.stdout.splitlines() == [
        "callback finished",
        "event over",
        "raised after the event",
    ], done


# A task process that gets a signal while it flushes its result (a message larger than the pipe
# holds, the parent not reading yet): it must not end halfway, with the queue's lock taken.
QUEUE_SCRIPT = """
import json, multiprocessing, os, signal, time
from msd_tasks.graph import interrupts

interrupts.install()
context = multiprocessing.get_context("fork")
results = context.Queue()

def put(size):
    results.put(b"x" * size)  # its feeder thread writes it while the process exits

first = context.Process(target=put, args=(1 << 24,))
first.start()
time.sleep(1)  # by now it waits in its exit for the feeder thread, which waits for a reader
os.kill(first.pid, signal.SIGTERM)
time.sleep(0.5)
second = context.Process(target=put, args=(10,))
second.start()
sizes = sorted(len(results.get(timeout=10)) for _ in range(2))
first.join(10)
second.join(10)
print(json.dumps({"sizes": sizes, "exit codes": [first.exitcode, second.exitcode]}), flush=True)
"""


def test_a_task_process_interrupted_while_it_sends_its_result_sends_it_whole():
    done = run_script(QUEUE_SCRIPT, timeout=30)
    assert done.returncode == 0, done
    seen = json.loads(done.stdout)
    assert seen["sizes"] == [10, 1 << 24], done
    assert seen["exit codes"][1] == 0, done


IGNORED_SCRIPT = """
import os, signal, time
from msd_tasks.graph import interrupts

signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell starts a background job
interrupts.install()
os.kill(os.getpid(), signal.SIGINT)
time.sleep(0.2)
print("still running", flush=True)
"""


def test_a_build_started_with_sigint_ignored_keeps_ignoring_it():
    done = run_script(IGNORED_SCRIPT)
    assert (done.returncode, done.stdout) == (0, "still running\n"), done


# publish() in a process without the handlers (Python's defaults: SIGTERM ends it at once),
# SIGTERM while the first deliverable is renamed into place.
PUBLISH_SCRIPT = """
import os, signal, sys
from pathlib import Path
from typing import TYPE_CHECKING
from msd_tasks.formats import publish as publishing

root = Path(sys.argv[1])
def sources(text):
    folder = root / f"build-{text}"
    (folder / "report").mkdir(parents=True)
    for name in ("a.h5", "b.npz"):
        (folder / name).write_text(f"{name} {text}")
    (folder / "report" / "index.html").write_text(f"<p>{text}</p>")
    return {"a.h5": folder / "a.h5", "b.npz": folder / "b.npz", "report": folder / "report"}

publishing.publish(sources("one"), root / "out", build="b1", details={})
replace = publishing._replace
def replace_and_get_terminated(staged, target):
    if staged.name == "a.h5":
        os.kill(os.getpid(), signal.SIGTERM)
    replace(staged, target)
publishing._replace = replace_and_get_terminated
publishing.publish(sources("two"), root / "out", build="b2", details={})
print("not reached", flush=True)
"""


def test_sigterm_during_the_switch_waits_for_a_complete_set_then_ends_the_process(tmp_path):
    done = run_script(PUBLISH_SCRIPT, str(tmp_path))
    assert done.returncode == -signal.SIGTERM, done
    assert "not reached" not in done.stdout
    assert published_set(tmp_path / "out", previous={}) == "new"
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["build"] == "b2"
    assert (tmp_path / "out" / "report" / "index.html").read_text() == "<p>two</p>"


# --- real builds -------------------------------------------------------------------------------

# A luigi module: msd_tasks with a slow publish (MSD_SLOW_PUBLISH seconds after staging and
# before each rename), so that a poll sees the staging folder and the switch half done.
SLOW_PUBLISH_MODULE = """
import os
import time

import msd_tasks
from msd_tasks.formats import publish

__all__ = ["msd_tasks"]
SECONDS = float(os.environ.get("MSD_SLOW_PUBLISH", "0"))
_check_sizes, _replace = publish._check_sizes, publish._replace


def slow_check_sizes(*args):
    _check_sizes(*args)
    time.sleep(SECONDS)


def slow_replace(*args):
    time.sleep(SECONDS)
    _replace(*args)


publish._check_sizes, publish._replace = slow_check_sizes, slow_replace
"""

N_SHARDS = 2


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under `folder`, hidden ones included, but
    metrics.prom, which every build writes, interrupted ones too."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() if path.is_file() else None
        for path in sorted(folder.rglob("*"))
        if path.name != METRICS
    }


def published_set(out: Path, previous: dict[str, bytes | None]) -> str:
    """Which set `out` holds: "previous" (byte-identical to `previous`, hidden files included),
    or "new", which must be complete and match its manifest, with nothing beside it."""
    now = snapshot(out)
    if now == previous:
        return "previous"
    manifest = json.loads(now["manifest.json"])
    assert manifest["state"] == "complete", manifest["state"]
    files = {name: content for name, content in now.items() if content is not None}
    files.pop("manifest.json")
    assert sorted(files) == sorted(manifest["files"]), "files beside the manifest's"
    for name, entry in manifest["files"].items():
        assert len(files[name]) == entry["bytes"], name
        assert hashlib.sha256(files[name]).hexdigest() == entry["sha256"], name
    folders = {name for name, content in now.items() if content is None}
    assert folders == {Path(name).parent.as_posix() for name in files} - {"."}, folders
    return "new"


def scan(checkpoints: Path) -> tuple[set[str], set[str]]:
    """The final `_SUCCESS` markers under `checkpoints`, and the temporary folders."""
    markers, temporaries = set(), set()
    for folder, subfolders, files in os.walk(checkpoints):
        temporaries.update(
            os.path.join(folder, name) for name in subfolders if name.startswith(".")
        )
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        if "_SUCCESS" in files:
            markers.add(folder)
    return markers, temporaries


def folders_to_write(raw_dir: Path, checkpoints: Path, out: Path) -> set[Path]:
    """The checkpoint folders a build of `raw_dir` still has to write."""
    config = get_config()
    settings = {
        "paths": {"raw_dir": raw_dir, "checkpoint_dir": checkpoints, "output_dir": out},
        "pipeline": {"n_shards": N_SHARDS},
    }
    for section, values in settings.items():
        if not config.has_section(section):
            config.add_section(section)
        for key, value in values.items():
            config.set(section, key, str(value))
    Register.clear_instance_cache()
    publish = Publish(fingerprints=raw.fingerprints(raw_dir), n_shards=N_SHARDS)
    folders = {task.folder() for task in graph_tasks(publish)}
    return {folder for folder in folders if not (folder / "_SUCCESS").is_file()}


def group_alive(pgid: int) -> list[psutil.Process]:
    """Processes of the process group that run (zombies excluded)."""
    alive = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != "zombie":
                alive.append(process)
        except (ProcessLookupError, psutil.Error):
            pass
    return alive


def wait_for(run: Run, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert run.returncode is None, f"the build ended before {what}: {run.tail()}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.005)


@dataclass
class Moments:
    """Rebuilds of one set of folders, each interrupted at a moment; what each left."""

    builds: Callable[..., Build]
    root: Path
    previous: dict[str, bytes | None]  # the published set before the rebuilds
    seen: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def interrupt(self, moment: str, signum: int, condition: Condition, slow: float = 0) -> None:
        """Start a rebuild, send `signum` to its process group as soon as `condition` holds;
        check the exit code, that no process of it is left, and the published set."""
        build = self.builds(
            name=f"moment{len(self.seen)}",
            workers=2,
            n_shards=N_SHARDS,
            module="slow_publish",
            lock_dir=self.root / f"locks{len(self.seen)}",
            env={"MSD_SLOW_PUBLISH": str(slow)},
            raw_dir=self.root / "raw",
            checkpoint_dir=self.checkpoints,
            output_dir=self.out,
        )
        before = scan(self.checkpoints)
        run = build.start()
        wait_for(run, lambda: condition(self, build, before), moment)
        os.killpg(run.pid, signum)
        sent = time.monotonic()
        code = run.wait(120)
        what = f"{signal.Signals(signum).name} {moment}: {run.tail()}"
        assert code in EXIT_CODES[signum], what
        # No task process was stuck until the last-resort timer ended it (faulthandler's dump).
        assert time.monotonic() - sent < STOP_SECONDS, what
        assert "most recent call first" not in run.stderr, what
        deadline = time.monotonic() + 15
        while group_alive(run.pid):
            assert time.monotonic() < deadline, f"{group_alive(run.pid)} outlived {what}"
            time.sleep(0.05)
        result = published_set(self.out, self.previous)
        self.seen.append((moment, signal.Signals(signum).name, result))
        if result == "new":  # back to the previous set, for the moments after this one
            shutil.rmtree(self.out)
            shutil.copytree(self.root / "previous", self.out)


# condition(moments, build, scan of the checkpoints at its start) -> bool
Condition = Callable[..., bool]


def at_once(moments, build, before) -> bool:
    return True


def lock_taken(moments, build, before) -> bool:
    return any(build.lock_dir.glob("*"))


def a_task_started(moments, build, before) -> bool:
    return bool(scan(moments.checkpoints)[1] - before[1])


def checkpoints_written(count: int) -> Condition:
    def written(moments, build, before) -> bool:
        return len(scan(moments.checkpoints)[0] - before[0]) >= count

    return written


def staging(moments, build, before) -> bool:
    return bool(glob.glob(str(moments.out / ".staging-*")))


def publishing(moments, build, before) -> bool:
    try:
        return json.loads((moments.out / "manifest.json").read_text())["state"] == "publishing"
    except (OSError, ValueError):
        return False


def half_renamed(moments, build, before) -> bool:
    """The manifest says publishing, and the first deliverable is the new one."""
    first = next(iter(DELIVERABLES))
    return publishing(moments, build, before) and (
        (moments.out / first).read_bytes() != moments.previous[first]
    )


def test_interrupts_at_moments_spread_over_a_rebuild(raw_files, builds, tmp_path, monkeypatch):
    raw_dir, out = tmp_path / "raw", tmp_path / "out"
    shutil.copytree(raw_files("sample", scale=0.005, seed=5), raw_dir)  # the rebuild edits it
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "slow_publish.py").write_text(SLOW_PUBLISH_MODULE)
    paths = [str(tmp_path / "modules"), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))  # the builds' PYTHONPATH adds it

    first = builds(
        name="first",
        workers=2,
        n_shards=N_SHARDS,
        raw_dir=raw_dir,
        checkpoint_dir=tmp_path / "checkpoints",
        output_dir=out,
    ).run()
    assert first.returncode == 0, first.tail()
    shutil.copytree(out, tmp_path / "previous")
    moments = Moments(builds, tmp_path, previous=snapshot(out))

    # A rebuild must publish a new set: a new user with ten plays of songs of the train file.
    train = raw.raw_path(raw_dir, "train")
    songs = [line.split(b"\t")[1] for line in train.read_bytes().splitlines()[:100:10]]
    with open(train, "ab") as file:
        file.writelines(b"%s\t%s\t3\n" % (b"f" * 40, song) for song in songs)
    assert len(folders_to_write(raw_dir, moments.checkpoints, out)) >= 8

    moments.interrupt("at once", signal.SIGINT, at_once)
    moments.interrupt("as the lock is taken", signal.SIGTERM, lock_taken)
    # Then each rebuild goes on from the checkpoints the last one left, as a user's would.
    kinds = [
        ("as a task starts", a_task_started),
        ("after a checkpoint", checkpoints_written(1)),
        ("after two checkpoints", checkpoints_written(2)),
    ]
    for step in itertools.count():
        remaining = len(folders_to_write(raw_dir, moments.checkpoints, out))
        if not remaining:
            break
        moment, condition = kinds[step % len(kinds)]
        if remaining < 2 and condition is kinds[2][1]:
            moment, condition = kinds[1]
        moments.interrupt(moment, SIGNALS[len(moments.seen) % 2], condition)
        assert step < 25, moments.seen

    # Only Publish is left: its staging folder, the manifest saying publishing, renames half done.
    moments.interrupt("while staging", signal.SIGTERM, staging, slow=0.2)
    for signum in SIGNALS:
        moments.interrupt("with the manifest saying publishing", signum, publishing, slow=0.1)
        moments.interrupt("halfway through the renames", signum, half_renamed, slow=0.1)

    print(*moments.seen, sep="\n")
    assert len(moments.seen) >= 10
    results = {(moment, result) for moment, _, result in moments.seen}
    assert ("while staging", "previous") in results
    # Interrupted during the switch, Publish took it to its end.
    assert {result for moment, result in results if "publishing" in moment} == {"new"}
    assert {result for moment, result in results if "renames" in moment} == {"new"}
