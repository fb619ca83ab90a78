"""Shared fixtures: Luigi's global state reset per test, and a pipeline configured in tmp_path."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import luigi
import pytest
from luigi.configuration import get_config
from luigi.execution_summary import LuigiStatusCode
from luigi.task_register import Register

from msd_sample import write_sample
from msd_tasks import BuildAll
from tests.handmade_data import write_handmade
from tests.luigid import Build, Luigid, running_luigid
from tests.notebook_port import run_notebook


@pytest.fixture(autouse=True)
def _fresh_luigi():
    """Tasks are cached per parameter set and config is a process-wide singleton: reset both."""
    Register.clear_instance_cache()
    config = get_config()
    saved = {section: dict(config.items(section)) for section in config.sections()}
    yield
    for section in config.sections():
        config.remove_section(section)
    for section, items in saved.items():
        config.add_section(section)
        for key, value in items.items():
            config.set(section, key, value)
    Register.clear_instance_cache()


@dataclass
class Pipeline:
    """Folders of one configured pipeline and a way to build it in this process."""

    raw_dir: Path
    checkpoint_dir: Path
    output_dir: Path

    def configure(self, n_shards: int = 3) -> None:
        config = get_config()
        for section in ("paths", "pipeline"):
            if not config.has_section(section):
                config.add_section(section)
        config.set("paths", "raw_dir", str(self.raw_dir))
        config.set("paths", "checkpoint_dir", str(self.checkpoint_dir))
        config.set("paths", "output_dir", str(self.output_dir))
        config.set("pipeline", "n_shards", str(n_shards))
        Register.clear_instance_cache()

    def build(self, workers: int = 1, **parameters) -> luigi.execution_summary.LuigiRunResult:
        Register.clear_instance_cache()
        return luigi.build(
            [BuildAll(**parameters)],
            local_scheduler=True,
            detailed_summary=True,
            workers=workers,
            log_level="WARNING",
        )

    def build_ok(self, workers: int = 1, **parameters):
        result = self.build(workers, **parameters)
        assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
        return result


@pytest.fixture
def pipeline_in(tmp_path):
    """A factory: a pipeline reading `raw_dir`, writing checkpoints and outputs in tmp_path."""

    def make(raw_dir: Path, n_shards: int = 3) -> Pipeline:
        pipeline = Pipeline(raw_dir, tmp_path / "checkpoints", tmp_path / "out")
        pipeline.configure(n_shards)
        return pipeline

    return make


@pytest.fixture(scope="session")
def raw_files(tmp_path_factory) -> Callable[..., Path]:
    """The one factory of raw input files, each set made once per session and shared:
    `raw_files("handmade")`, or `raw_files("sample", scale=0.002, seed=5)` (msd_sample).
    Returns the raw folder; a test that changes or fingerprints files copies it (copy_raw)."""
    made: dict[tuple, Path] = {}

    def make(kind: str, scale: float = 0.0005, seed: int = 11) -> Path:
        key = (kind,) if kind == "handmade" else (kind, scale, seed)
        if key not in made:
            raw_dir = tmp_path_factory.mktemp("-".join(map(str, key))) / "raw"
            if kind == "handmade":
                write_handmade(raw_dir)
            else:
                write_sample(raw_dir, scale=scale, seed=seed)
            made[key] = raw_dir
        return made[key]

    return make


@pytest.fixture(scope="session")
def handmade(raw_files):
    """Handmade raw files (`raw/`) and the notebook port's deliverables on them (`notebook/`)."""
    root = raw_files("handmade").parent
    run_notebook(root / "raw", root / "notebook", processes=1)
    return root


@pytest.fixture(scope="session")
def sample(raw_files):
    """Small generated raw files (`raw/`) and the notebook port's deliverables (`notebook/`)."""
    root = raw_files("sample", scale=0.0005, seed=11).parent
    run_notebook(root / "raw", root / "notebook", processes=2)
    return root


@pytest.fixture
def luigid(tmp_path) -> Iterator[Luigid]:
    """A real luigid on a free loopback port, state and logs in tmp_path; stopped at the end."""
    with running_luigid(tmp_path / "luigid") as server:
        yield server


@pytest.fixture
def builds(tmp_path) -> Iterator[Callable[..., Build]]:
    """`builds(...)` makes a `Build` (cwd defaults to tmp_path); its runs are killed at teardown."""
    made: list[Build] = []

    def make(**kwargs) -> Build:
        build = Build(**{"cwd": tmp_path, **kwargs})
        made.append(build)
        return build

    yield make
    for build in made:
        for run in build.started:
            if run.process.poll() is None:
                run.kill_group()


def copy_raw(source: Path, tmp_path: Path) -> Path:
    """A private copy of a reference's raw files, for a test that changes or fingerprints them."""
    shutil.copytree(source / "raw", tmp_path / "raw")
    return tmp_path / "raw"


# Test tiers (README, Development): `pytest -m unit` is the inner loop of a few seconds.
PROCESS_MODULES = {  # real `luigi`/`luigid` processes, signals, kills
    "test_benchmark",
    "test_faults",
    "test_full_disk",
    "test_interrupts",
    "test_metrics",
    "test_notebook_port",
    "test_readme_luigid",
    "test_scheduler",
}
GRAPH_FIXTURES = {
    "pipeline_in",
    "handmade",
    "sample",
    "raw_files",
    "busy_sample",
}  # whole Luigi builds


def pytest_collection_modifyitems(items):
    """Each test gets one tier: `process`, `graph` (a Luigi build in this process) or `unit`."""
    for item in items:
        if any(item.get_closest_marker(name) for name in ("unit", "graph", "process")):
            continue
        if item.module.__name__.rsplit(".", 1)[-1] in PROCESS_MODULES:
            item.add_marker(pytest.mark.process)
        elif GRAPH_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.graph)
        else:
            item.add_marker(pytest.mark.unit)
