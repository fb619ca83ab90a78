"""The scheduling process's fork hooks: the late imports.

The tests that fork run a script in a fresh interpreter, where matplotlib is not yet imported,
and keep the fork hooks that script installs out of the pytest process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from msd_tasks.graph.forks import LateImports

FORK_SCRIPT = """
import json, multiprocessing, sys
from pathlib import Path
import luigi
from msd_tasks.graph.forks import install_fork_hooks

class FileTask(luigi.ExternalTask):
    path = luigi.Parameter()
    def output(self):
        return luigi.LocalTarget(self.path)

def report(queue):
    module = sys.modules.get("msd_tasks.report.page")
    queue.put(hasattr(module, "render_report"))  # imported, and to its end

def fork_a_worker():
    queue = multiprocessing.Queue()
    worker = multiprocessing.Process(target=report, args=(queue,))
    worker.start()
    imported = queue.get(timeout=60)
    worker.join()
    return imported

marker = Path(sys.argv[1])
late_imports = install_fork_hooks()
late_imports.start_after([FileTask(path=str(marker))])
seen = {"before": "matplotlib" in sys.modules}
seen["a fork while the task is incomplete"] = fork_a_worker()
seen["started by it"] = late_imports.thread is not None
marker.write_text("done")
seen["the fork that starts them"] = fork_a_worker()
seen["the next fork"] = fork_a_worker()
seen["after"] = "matplotlib" in sys.modules
print(json.dumps(seen))
"""


def run_script(script: str, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,  # the assertion shows stderr
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_late_imports_start_after_their_tasks_and_later_forks_inherit_them_whole(tmp_path):
    seen = json.loads(run_script(FORK_SCRIPT, str(tmp_path / "marker")))
    assert seen == {
        "before": False,
        "a fork while the task is incomplete": False,
        "started by it": False,
        "the fork that starts them": False,  # they start once it has forked
        "the next fork": True,  # it waited for the imports to finish
        "after": True,
    }


def test_a_late_import_that_fails_is_left_to_the_task_that_needs_it():
    sys.modules.pop("colorsys", None)  # a module nothing here imports otherwise
    late_imports = LateImports(modules=("msd_tasks.no_such_module", "colorsys"))
    late_imports.run()  # raises nothing, and goes on with the next module
    assert "colorsys" in sys.modules


BUILD_SCRIPT = """
import json, os, sys
import luigi
from msd_tasks import BuildAll
from msd_tasks.graph.forks import install_fork_hooks
from msd_tasks.graph.tasks import PipelineTask

SLOW = ("pandas", "tables", "pyarrow.dataset", "scipy.sparse", "matplotlib")
modules_at_start = set()

@PipelineTask.event_handler(luigi.Event.START)
def remember_the_modules(task):  # in the worker, before the task runs
    modules_at_start.update(sys.modules)

@PipelineTask.event_handler(luigi.Event.SUCCESS)
def print_the_slow_imports(task):  # in the worker, after the task ran
    new = set(sys.modules) - modules_at_start
    slow = sorted(m for m in new if any(m == s or m.startswith(s + ".") for s in SLOW))
    line = "worker imported: " + json.dumps([task.task_family, slow]) + "\\n"
    os.write(1, line.encode())  # one write: the lines of two workers do not interleave

assert "matplotlib" not in sys.modules
assert luigi.build([BuildAll()], local_scheduler=True, workers=2, log_level="ERROR")
late_imports = install_fork_hooks()
print(json.dumps({
    "waited for": sorted(task.task_family for task in late_imports.wait_for.values()),
    "imported here": "matplotlib" in sys.modules and "scipy.sparse" in sys.modules,
}))
"""


def test_a_build_imports_the_slow_modules_before_forking_the_workers_that_use_them(
    handmade, tmp_path
):
    config = tmp_path / "luigi.cfg"
    config.write_text(
        f"[paths]\nraw_dir = {handmade / 'raw'}\ncheckpoint_dir = {tmp_path / 'checkpoints'}\n"
        f"output_dir = {tmp_path / 'out'}\n"
    )
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(config)}
    *workers, last = run_script(BUILD_SCRIPT, env=env).splitlines()
    assert json.loads(last) == {
        "waited for": ["CleanSongs", "ImportTriplets", "ImportTriplets", "ImportTriplets"],
        "imported here": True,
    }
    imports = [json.loads(line.removeprefix("worker imported: ")) for line in workers]
    assert {family for family, _ in imports} >= {"JoinPlays", "PlayMatrices", "BuildReport"}
    assert [(family, slow) for family, slow in imports if slow] == []
    assert (tmp_path / "out" / "report" / "index.html").is_file()
