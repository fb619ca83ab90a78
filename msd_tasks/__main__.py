"""`python -m msd_tasks verify [OUTPUT_DIR] [--inputs]`: check a published build.

Exit status 0 when every published file matches manifest.json (and, with --inputs, every raw
file the digest the build recorded), 1 otherwise, with one line per file that differs.
Directories default to `[paths]` in luigi.cfg.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from msd_tasks.formats.verify import problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m msd_tasks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="check a build against its manifest.json")
    verify.add_argument("output_dir", nargs="?", type=Path, help="default: [paths] output_dir")
    verify.add_argument(
        "--inputs", action="store_true", help="also hash the raw files again and compare"
    )
    verify.add_argument("--raw-dir", type=Path, help="default: [paths] raw_dir")
    args = parser.parse_args(argv)
    from msd_tasks.graph.config import paths  # reads luigi.cfg

    output_dir = args.output_dir or Path(paths().output_dir)
    raw_dir = (args.raw_dir or Path(paths().raw_dir)) if args.inputs else None
    found = problems(output_dir, raw_dir)
    for problem in found:
        print(problem)
    if not found:
        checked = "the published files" + (" and the raw files" if args.inputs else "")
        print(f"{output_dir}: {checked} match manifest.json")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
