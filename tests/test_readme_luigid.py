"""The `luigid` commands of README.md ("Central scheduler and several workers"), run as written.

Each `luigid` line of that code block runs through `bash -c` in a fresh clone (tmp_path holding
luigi.cfg, data/.gitkeep and .venv/bin, a symlink to this interpreter's bin folder), after the
block's `mkdir` lines. The server must come up and listen on the loopback only: luigid has no
authentication. The README's port is used unless something already holds it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.luigid import answers, free_port

REPO = Path(__file__).resolve().parent.parent
SECTION = "### Central scheduler and several workers"
LOOPBACK = {"127.0.0.1", "::1"}
TIMEOUT = 30.0


def _block_lines() -> list[str]:
    """The shell lines (no comments, no blanks) of the first ```sh block of SECTION."""
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    match = re.search(r"^```sh\n(.*?)^```", text[start:], re.DOTALL | re.MULTILINE)
    assert match, f"no ```sh block under {SECTION!r} in README.md"
    lines = [line.strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _program(line: str) -> str:
    return Path(shlex.split(line, comments=True)[0]).name


LINES = _block_lines()
MKDIRS = [line for line in LINES if _program(line) == "mkdir"]
LUIGIDS = [line for line in LINES if _program(line) == "luigid"]


def _port_taken(port: int) -> bool:
    """Whether luigid could not bind `port` on every interface (as tornado does, SO_REUSEADDR)."""
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 here
            continue
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    return True
    return False


def _listeners(port: int) -> list:
    return [
        conn
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
    ]


def _answers(port: int) -> bool:
    return answers(f"http://127.0.0.1:{port}")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _read_pid(pidfile: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(pidfile.read_text().strip())
    return None


def _wait_until(condition, what: str, log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {TIMEOUT:.0f} s; luigid output:\n{_tail(log)}")
        time.sleep(0.05)


def _tail(log: Path) -> str:
    folder = log.parent
    files = [log, *sorted((folder / "clone" / "data" / "luigid" / "logs").glob("*"))]
    return "".join(
        f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}\n"
        for path in files
        if path.is_file()
    )


def _stop_clone_processes(clone: Path) -> None:
    """Kill whatever still runs in `clone` (only our luigid can): the safety net of a failure."""
    for process in psutil.process_iter(["cwd"]):
        cwd = process.info["cwd"]
        if cwd and Path(cwd).is_relative_to(clone) and process.pid != os.getpid():
            with contextlib.suppress(psutil.Error):
                process.kill()


def _fresh_clone(folder: Path) -> Path:
    clone = folder / "clone"
    (clone / "data").mkdir(parents=True)
    (clone / "data" / ".gitkeep").touch()
    (clone / "luigi.cfg").write_text((REPO / "luigi.cfg").read_text())
    (clone / ".venv").mkdir()
    (clone / ".venv" / "bin").symlink_to(Path(sys.executable).parent, target_is_directory=True)
    return clone


def test_block_has_the_commands():
    assert MKDIRS, "no mkdir line in the luigid code block"
    assert len(LUIGIDS) == 2, LUIGIDS
    assert [line for line in LUIGIDS if "--background" in shlex.split(line)], LUIGIDS
    assert LINES.index(MKDIRS[0]) < LINES.index(LUIGIDS[0]), "mkdir must come first"


@pytest.mark.parametrize(
    "line",
    LUIGIDS,
    ids=["background" if "--background" in line else "foreground" for line in LUIGIDS],
)
def test_luigid_line_binds_loopback(line: str, tmp_path: Path):
    clone = _fresh_clone(tmp_path)
    env = {key: value for key, value in os.environ.items() if key != "LUIGI_CONFIG_PATH"}
    for mkdir in [m for m in MKDIRS if LINES.index(m) < LINES.index(line)]:
        subprocess.run(["bash", "-c", mkdir], cwd=clone, env=env, check=True, timeout=TIMEOUT)

    port = int(re.search(r"--port[ =](\d+)", line).group(1))
    if _port_taken(port):  # run literally unless the README's port is held by someone else
        new_port = free_port()
        line = line.replace(f"--port {port}", f"--port {new_port}")
        port = new_port

    words = shlex.split(line)
    background = "--background" in words
    pidfile = clone / words[words.index("--pidfile") + 1] if background else None
    log = tmp_path / "luigid.txt"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", line],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        if background:
            code = process.wait(TIMEOUT)
            assert code == 0, f"exit {code}:\n{_tail(log)}"
            _wait_until(lambda: _read_pid(pidfile), "no pid in the pidfile", log)
            pid = _read_pid(pidfile)
            _wait_until(lambda: _answers(port) or not _alive(pid), "luigid did not answer", log)
            assert _alive(pid), f"luigid exited:\n{_tail(log)}"
        else:

            def up() -> bool:
                assert process.poll() is None, f"exit {process.returncode}:\n{_tail(log)}"
                return _answers(port)

            _wait_until(up, "luigid did not answer", log)
            pid = process.pid

        listeners = _listeners(port)
        assert listeners, f"nothing listens on port {port}"
        addresses = sorted({conn.laddr.ip for conn in listeners})
        assert set(addresses) <= LOOPBACK, f"luigid listens on {addresses}, not only the loopback"
        ours = {pid} | {child.pid for child in psutil.Process(pid).children(recursive=True)}
        owners = {conn.pid for conn in listeners} - {None}
        assert owners <= ours, f"port {port} is held by {owners}, not luigid {pid}"

        if background:
            os.kill(pid, signal.SIGTERM)
            _wait_until(lambda: not _alive(pid), "luigid did not stop", log)
        else:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(TIMEOUT)
        _wait_until(lambda: not _listeners(port), f"port {port} was not freed", log)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(TIMEOUT)
        _stop_clone_processes(clone)
