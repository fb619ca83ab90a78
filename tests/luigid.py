"""Real processes for the scheduler and fault tests: a `luigid` on loopback, and `luigi` builds.

`running_luigid(folder)` starts the `luigid` console script on a free 127.0.0.1 port, waits until
`HEAD /` answers and yields a `Luigid` (`.url`, `.api(method, **kwargs)`); it stops the server
by its pid when the block ends. `Build` runs `luigi --module ... BuildAll` as users run it: the
console script next to sys.executable, cwd = a folder of the test holding its own luigi.cfg (so
the repo's luigi.cfg is never read), output captured in files.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"

# The repo's luigi.cfg without [paths] / [pipeline]: those are given on the command line.
LUIGI_CFG = """\
[core]
autoload_range = false

[retcode]
already_running = 10
missing_data = 20
not_run = 25
task_failed = 30
scheduling_error = 35
unhandled_exception = 40
"""


def answers(url: str) -> bool:
    """Whether a luigid at `url` answers its health check (`HEAD /`)."""
    request = urllib.request.Request(f"{url}/", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=2) as reply:
            return reply.status < 400
    except (urllib.error.URLError, OSError):
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def stop_process(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate `process` by its pid, then kill it if it does not exit within `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)


@dataclass
class Luigid:
    """A running central scheduler."""

    process: subprocess.Popen
    port: int
    folder: Path
    host: str = HOST

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def api(self, method: str, **kwargs) -> object:
        """GET /api/<method>?data=<json kwargs> and return the reply's `response`."""
        query = urllib.parse.urlencode({"data": json.dumps(kwargs)})
        with urllib.request.urlopen(f"{self.url}/api/{method}?{query}", timeout=10) as reply:
            return json.loads(reply.read())["response"]

    def answers(self) -> bool:
        return answers(self.url)

    def log(self) -> str:
        files = [*sorted(self.folder.glob("*.txt")), *sorted(self.folder.glob("logs/*"))]
        return "".join(path.read_text(errors="replace")[-4000:] for path in files)


def _start_luigid(folder: Path, port: int, timeout: float) -> Luigid:
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    (folder / "luigi.cfg").write_text("")  # luigid reads luigi.cfg from its cwd: an empty one
    command = [
        str(BIN / "luigid"),
        *("--address", HOST, "--port", str(port)),
        *("--state-path", str(folder / "state.pickle"), "--logdir", str(folder / "logs")),
    ]
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(folder / "luigi.cfg")}
    with open(folder / "stdout.txt", "ab") as out, open(folder / "stderr.txt", "ab") as err:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=err)
    server = Luigid(process, port, folder)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.answers():
            return server
        if process.poll() is not None:
            break
        time.sleep(0.1)
    stop_process(process)
    raise RuntimeError(
        f"luigid on port {port} did not come up (exit {process.poll()}):\n{server.log()}"
    )


@contextlib.contextmanager
def running_luigid(folder: Path, timeout: float = 30.0) -> Iterator[Luigid]:
    """A luigid on a free loopback port with its state and logs in `folder`; stopped at the end."""
    for attempt in range(3):  # the free port may be taken between probing and binding it
        try:
            server = _start_luigid(folder, free_port(), timeout)
            break
        except RuntimeError as error:
            if attempt == 2 or "Address already in use" not in str(error):
                raise
    try:
        yield server
    finally:
        stop_process(server.process)


@dataclass
class Build:
    """One `luigi --module <module> BuildAll` command line run in `cwd` (which gets a luigi.cfg)."""

    cwd: Path
    raw_dir: Path
    checkpoint_dir: Path
    output_dir: Path
    workers: int = 1
    n_shards: int | None = None
    module: str = "msd_tasks"
    scheduler: Luigid | None = None
    lock_dir: Path | None = None
    extra: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    config: str = ""  # more luigi.cfg sections
    name: str = "build"
    started: list[Run] = field(default_factory=list)  # every run of it, for the cleanup

    def command(self) -> list[str]:
        where = (
            ["--scheduler-host", self.scheduler.host, "--scheduler-port", str(self.scheduler.port)]
            if self.scheduler
            else ["--local-scheduler"]
        )
        shards = [] if self.n_shards is None else ["--pipeline-n-shards", str(self.n_shards)]
        lock_dir = self.lock_dir or self.cwd / "locks"
        return [
            str(BIN / "luigi"),
            *("--module", self.module, "BuildAll", *where, "--workers", str(self.workers)),
            *("--lock-pid-dir", str(lock_dir)),
            *("--paths-raw-dir", str(self.raw_dir)),
            *("--paths-checkpoint-dir", str(self.checkpoint_dir)),
            *("--paths-output-dir", str(self.output_dir)),
            *shards,
            *self.extra,
        ]

    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("MSD_") and key != "LUIGI_CONFIG_PATH"
        }
        python_path = [str(REPO), *filter(None, [env.get("PYTHONPATH")])]
        env.update(
            PYTHONPATH=os.pathsep.join(python_path),
            LUIGI_CONFIG_PATH=str(self.cwd / "luigi.cfg"),
            **self.env,
        )
        return env

    def start(self, attempt: str = "", prefix: tuple[str, ...] = ()) -> Run:
        """Start the command in its own session (so that its whole process group can be killed);
        `prefix` runs it through another command (`prefix + command`)."""
        self.cwd.mkdir(parents=True, exist_ok=True)
        (self.cwd / "luigi.cfg").write_text(LUIGI_CFG + self.config)
        stem = self.cwd / f"{self.name}{attempt}"
        with open(f"{stem}.out", "wb") as out, open(f"{stem}.err", "wb") as err:
            process = subprocess.Popen(
                [*prefix, *self.command()],
                cwd=self.cwd,
                env=self.environment(),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        run = Run(process, Path(f"{stem}.out"), Path(f"{stem}.err"), time.monotonic())
        self.started.append(run)
        return run

    def run(self, attempt: str = "", timeout: float = 300) -> Run:
        run = self.start(attempt)
        run.wait(timeout)
        return run


@dataclass
class Run:
    """A started build: its process and the files holding its stdout and stderr."""

    process: subprocess.Popen
    stdout_path: Path
    stderr_path: Path
    started: float
    finished: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def tail(self, chars: int = 4000) -> str:
        return f"exit {self.returncode}, stderr ends:\n{self.stderr[-chars:]}"

    def wait(self, timeout: float = 300) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise
        if self.finished is None:
            self.finished = time.monotonic()
        return code

    def kill_group(self) -> None:
        """SIGKILL the whole process group (the luigi process and its task processes)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        if self.finished is None:
            self.finished = time.monotonic()
