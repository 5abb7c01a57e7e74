"""The tables of a stored run: CSV files written atomically, read back as NumPy columns.

A :class:`Table` keeps its rows (and their serialised lines) in memory and rewrites its file
atomically on :meth:`Table.flush` (:func:`atomic_write`: a temporary file in the same
directory, fsynced, then :func:`os.replace`), so a crash never leaves a half-written file.
Columns are the union of the keys appended, missing cells empty; :func:`read_table` parses a
column as float64 when every non-empty cell is a number (empty = nan), else as strings.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Table", "atomic_write", "read_table"]


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync it, then rename over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def _cell(value) -> str:
    """A metric value as CSV text: numbers round-trip exactly, None is an empty cell."""
    if value is None:
        return ""
    if hasattr(value, "item") and callable(value.item):  # 0-dim tensors, numpy scalars
        numel = getattr(value, "numel", None)
        size = numel() if callable(numel) else getattr(value, "size", 1)
        if size != 1:
            raise ValueError(f"metric value must be a scalar, got shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"metric value {value!r} of type {type(value).__name__} is not a number or string")


class Table:
    """Rows of one CSV table, with their serialised lines cached so a flush costs only I/O."""

    def __init__(self, path: Path, first: tuple[str, ...] = ()):
        self.path = path
        self.columns: list[str] = list(first)
        self.rows: list[dict[str, str]] = []
        self.lines: list[str] = []  # serialised rows for the current columns
        self.dirty = False
        self.unflushed = 0

    @classmethod
    def read(cls, path: Path) -> "Table":
        t = cls(path)
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is not None:
                t.columns = header
                for rec in reader:
                    t.rows.append({k: v for k, v in zip(header, rec) if v != ""})
        t._reserialise()
        return t

    def _line(self, row: dict[str, str]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([row.get(c, "") for c in self.columns])
        return buf.getvalue()

    def _reserialise(self) -> None:
        self.lines = [self._line(r) for r in self.rows]

    def append(self, row: dict[str, Any]) -> None:
        cells = {str(k): _cell(v) for k, v in row.items()}
        new = [k for k in cells if k not in self.columns]
        if new:
            self.columns.extend(new)
            self._reserialise()  # older rows get empty cells for the new columns
        self.rows.append(cells)
        self.lines.append(self._line(cells))
        self.dirty = True
        self.unflushed += 1

    def truncate_after(self, step: float) -> None:
        keep = []
        for r in self.rows:
            s = r.get("step", "")
            try:
                if s != "" and float(s) > step:
                    continue
            except ValueError:
                pass
            keep.append(r)
        if len(keep) != len(self.rows):
            self.rows = keep
            self._reserialise()
            self.dirty = True

    def flush(self) -> None:
        if not self.dirty:
            return
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(self.columns)
        atomic_write(self.path, (header.getvalue() + "".join(self.lines)).encode())
        self.dirty = False
        self.unflushed = 0


def read_table(path) -> dict[str, np.ndarray]:
    """CSV (a path, or an open text file) -> columns: float64 where every non-empty cell
    parses (empty = nan), else str."""
    with contextlib.nullcontext(path) if hasattr(path, "read") else open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None) or []
        recs = list(reader)
    out = {}
    for j, name in enumerate(header):
        cells = [r[j] if j < len(r) else "" for r in recs]
        try:
            out[name] = np.array([float(c) if c != "" else math.nan for c in cells], dtype=float)
        except ValueError:
            out[name] = np.array(cells, dtype=str)
    return out
