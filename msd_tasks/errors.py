"""Errors for bad raw input: the file, the line (or row/column), what was expected and found."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Raw input that the pipeline refuses to guess about."""

    def __init__(self, path: Path | str, where: str, expected: str, found: str = ""):
        self.path, self.where, self.expected, self.found = str(path), where, expected, found
        message = f"{path}: {where}: expected {expected}"
        if found:
            message += f", found {found}"
        super().__init__(message)


class MissingInputError(FileNotFoundError):
    """Raw files that are not where the configuration says they are."""

    def __init__(self, missing: list[Path], sources: dict[str, str]):
        lines = [f"{len(missing)} raw input file(s) missing:"]
        lines += [f"  {path}" for path in missing]
        lines += ["Where the real data comes from:"]
        lines += [f"  {name}: {url}" for name, url in sources.items()]
        super().__init__("\n".join(lines))
        self.missing = missing
