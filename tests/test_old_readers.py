"""The .h5 deliverables as the oldest readers we support read them, each in its own Python.

Proposed as tests/test_old_readers.py. Each READERS row names a Python minor version and the
exact numpy, pandas and PyTables wheels of a reader that consumers still run. The test finds
that interpreter (pyenv's versions, which this project's machine image ships, or pythonX.Y on
PATH, or $MSD_PYTHON_3_7 and the like), makes a virtualenv with exactly those wheels (binary
only; uv when it is installed: about 3 s an environment, else pip: 20-40 s), reads every
published .h5 with `pd.read_hdf(path)` in it, and compares each column's values, the index and
the column order with what this venv's pandas reads (itself under `-W error`: numpy 2 must not
warn about the module names in the pickles).

No old interpreter: the row is skipped, or fails where MSD_REQUIRE_OLD_READERS=1 (.ci/run sets
it on this image, which has them). Virtualenvs are kept in pytest's cache (.pytest_cache),
keyed by interpreter and pins, so only the first run pays for the install.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import msd_tasks
from msd_tasks.graph.build import DELIVERABLES

H5_FILES = sorted(name for name in DELIVERABLES if name.endswith(".h5"))

# The oldest reader per Python that the files promise to support, each pin the last release
# for that Python unless said otherwise. They need pickle protocol 4 and numpy 1's module name
# in the pickles (msd_tasks/formats/list_pickle.py, portable_pickle).
READERS = {
    # The reader: Python 3.7 reads no protocol-5 pickle.
    "3.7": ("numpy==1.21.6", "pandas==1.3.5", "tables==3.7.0"),
    # numpy 1.x on Python 3.8: no `numpy._core` module to unpickle from.
    "3.8": ("numpy==1.24.4", "pandas==2.0.3", "tables==3.8.0"),
    # The oldest of everything with cp39 wheels that numpy 1.26.1 (the first with a
    # `numpy._core` alias) runs with: pandas 1.1.3 is the first with cp39 wheels; PyTables 3.6.1
    # fails to import on numpy >= 1.24 (np.typeDict).
    "3.9": ("numpy==1.26.1", "pandas==1.1.3", "tables==3.7.0"),
}

# Runs on Python 3.6+ and pandas 1.0+: no f-strings with `=`, no walrus, no removesuffix.
READ_SCRIPT = textwrap.dedent(
    """
    import json, math, sys
    import numpy as np
    import pandas as pd

    def plain(value):
        if isinstance(value, (list, tuple, np.ndarray)):
            return [plain(item) for item in value]
        if isinstance(value, np.generic):
            value = value.item()
        if value is None:
            return "<None>"
        if isinstance(value, float):
            return "<NaN>" if math.isnan(value) else repr(value)
        if isinstance(value, (bool, int, str)):
            return value
        return "<%s %r>" % (type(value).__name__, value)

    files = {}
    for path in sys.argv[1:]:
        frame = pd.read_hdf(path)
        files[path.rsplit("/", 1)[-1]] = {
            "columns": [str(c) for c in frame.columns],
            "index": [frame.index.name, plain(frame.index.tolist())],
            "values": {str(c): plain(frame[c].tolist()) for c in frame.columns},
        }
    versions = [sys.version.split()[0], np.__version__, pd.__version__]
    json.dump({"versions": versions, "files": files}, sys.stdout)
    """
)


def _python(version: str) -> str | None:
    """An interpreter of `version` (e.g. "3.7"), or None."""
    candidates = [os.environ.get("MSD_PYTHON_" + version.replace(".", "_"))]
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = root.glob(f"versions/{version}.*/bin/python{version}")
    candidates += sorted(found, key=lambda p: [int(x) for x in p.parts[-3].split(".")[:3]])[::-1]
    candidates.append(shutil.which(f"python{version}"))  # a pyenv shim works only if selected
    for candidate in filter(None, candidates):
        try:
            said = subprocess.run(
                [str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                check=False,
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if said == version:
            return str(candidate)
    return None


def _reader_env(python: str, pins: tuple[str, ...], cache: Path) -> Path:
    """The interpreter of a virtualenv of `python` with exactly `pins` (binary wheels only)."""
    key = hashlib.sha256(json.dumps([python, *pins]).encode()).hexdigest()[:12]
    venv = cache / key
    done = venv / "installed.json"
    if done.exists():
        return venv / "bin" / "python"
    shutil.rmtree(venv, ignore_errors=True)
    uv = _uv()
    if uv:
        commands = [
            [uv, "venv", "--quiet", "--python", python, str(venv)],
            [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
             "--only-binary", ":all:", *pins],
        ]  # fmt: skip
    else:
        commands = [
            [python, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "--only-binary=:all:", *pins],
        ]  # fmt: skip
    for command in commands:
        done_run = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600)
        assert done_run.returncode == 0, f"{command[:3]}... failed:\n{done_run.stderr[-3000:]}"
    done.write_text(json.dumps([python, *pins]))
    return venv / "bin" / "python"


def _uv() -> str | None:
    try:
        from uv import find_uv_bin  # the `uv` wheel, if the test extras install it
    except ImportError:
        return shutil.which("uv")
    return find_uv_bin()


def _read(python: str, folder: Path, *flags: str) -> dict:
    script = folder.parent / "read_deliverables.py"
    script.write_text(READ_SCRIPT)
    run = subprocess.run(
        [python, *flags, str(script), *(str(folder / name) for name in H5_FILES)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder.parent,  # not the repository: no msd_tasks, tests or stray module in sight
    )
    assert run.returncode == 0, f"{python} could not read the deliverables:\n{run.stderr[-3000:]}"
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def published(raw_files, tmp_path_factory) -> Path:
    """The deliverables of a sample build, by `luigi` in its own process (README's command)."""
    root = tmp_path_factory.mktemp("old-readers")
    raw_dir = raw_files("sample", scale=0.0005, seed=11)
    (root / "luigi.cfg").write_text(
        f"[paths]\nraw_dir={raw_dir}\ncheckpoint_dir={root / 'ck'}\noutput_dir={root / 'out'}\n"
        "[retcode]\ntask_failed=30\nscheduling_error=35\nunhandled_exception=40\nmissing_data=20\n"
    )
    source = Path(msd_tasks.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(source), "LUIGI_CONFIG_PATH": str(root / "luigi.cfg")}
    luigi = Path(sys.executable).with_name("luigi")
    command = [str(luigi), "--module", "msd_tasks", "BuildAll", "--local-scheduler"]
    build = subprocess.run(
        command, check=False, cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return root / "out"


@pytest.fixture(scope="module")
def current(published) -> dict:
    """What this venv's pandas reads, with every warning an error."""
    return _read(sys.executable, published, "-W", "error")["files"]


@pytest.mark.process
@pytest.mark.parametrize("version", sorted(READERS))
def test_the_oldest_readers_read_the_same_values(version, request, tmp_path):
    python = _python(version)
    if python is None:
        message = f"no Python {version} here (pyenv's {version}.x, python{version} on PATH)"
        if os.environ.get("MSD_REQUIRE_OLD_READERS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("old-readers") if cache else tmp_path
    reader = _reader_env(python, READERS[version], Path(folder))
    published = request.getfixturevalue("published")  # built only once an interpreter is found
    current = request.getfixturevalue("current")

    old = _read(str(reader), published)
    assert old["versions"][0].startswith(version + "."), old["versions"]
    for name in H5_FILES:
        want, got = current[name], old["files"][name]
        assert got["columns"] == want["columns"], name
        assert got["index"] == want["index"], f"{name}: the index differs"
        for column in want["columns"]:
            assert got["values"][column] == want["values"][column], (
                f"{name}[{column!r}] read by Python {old['versions'][0]}, numpy "
                f"{old['versions'][1]}, pandas {old['versions'][2]} differs from this venv's"
            )
