"""Argument types for the command line: each checks a value before any work is done (a run can take an hour) and
says what is wrong with it in argparse's one-line error."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def file_out(value: str) -> str:
    """`--out` for a file, checked before any work is done (a run can take an hour): not an existing folder, under a
    folder, not a file, and where this user may write."""
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a folder; give a file path (e.g. {path / 'report.json'})")
    _check_writable(value, path)
    return value


def _check_writable(value: str, path: Path) -> None:
    """Whatever exists nearest at or above `path` (the file it replaces, or the folder it goes in) must be a folder or
    the file itself, and writable by this user."""
    above = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    if not above.is_dir() and above != path.absolute():
        raise argparse.ArgumentTypeError(f"{value}: {above} is a file, not a folder")
    if not os.access(above, os.W_OK):  # the folder it goes in, or the file it replaces
        raise argparse.ArgumentTypeError(f"{value}: this user may not write {'in ' if above.is_dir() else ''}{above}")


def port(value: str) -> int:
    """A TCP port to serve on: 1 to 65535 (0 would take a port no client is told of)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1 to 65535)")
    return n


def positive(value: str) -> int:
    """A count that must be at least 1 (a batch size of 0 or a limit of -5 would mean nothing, or drop records)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive count")
    return n


def folder_out(value: str) -> str:
    """`--out` for a folder, checked before any work is done: not an existing file, and not under one."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a file; give a folder")
    _check_writable(value, path)
    return value
