"""A page's declared parameters (its ``parameters`` cell: defaults, stated ranges) and the
checks of every value injected into it (see :mod:`clipcore.book` for the rules)."""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from pathlib import Path

from .. import yaml12
from ..profiles import PROFILES
from .sources import COMMON_PARAMETERS, KERNEL, PARAMS_FILE, ROOT, BookError, Page, executable_pages

_NUM = r"[-+]?(?:inf|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_RANGE = re.compile(
    rf"(?:(?P<op>[<>])\s*(?P<bound>{_NUM})"
    rf"|in\s*(?P<lb>[\[(])\s*(?P<lo>{_NUM})\s*,\s*(?P<hi>{_NUM})\s*(?P<rb>[\])]))"
    r"\s*(?::|$)"
)
_LOOKS_LIKE_RANGE = re.compile(r"(?:[<>=]|in\s*[\[(])")


def _number(text: str) -> int | float:
    return float(text) if re.search(r"[.eEn]", text) else int(text)


@dataclass(frozen=True)
class Range:
    """``lo < x`` (or ``<=`` when ``lo_closed``) and ``x < hi`` (or ``<=``)."""

    lo: float = -math.inf
    lo_closed: bool = False
    hi: float = math.inf
    hi_closed: bool = False
    text: str = ""

    def __contains__(self, x) -> bool:
        above = x >= self.lo if self.lo_closed else x > self.lo
        below = x <= self.hi if self.hi_closed else x < self.hi
        return bool(above and below)

    def __str__(self) -> str:
        return self.text


def parse_range(comment: str) -> Range | None:
    """The range at the start of a parameter's comment (see the module docstring), or None
    when the comment does not start with one; a ``ValueError`` when it starts like one but is
    malformed."""
    comment = comment.strip()
    m = _RANGE.match(comment)
    if m is None:
        if _LOOKS_LIKE_RANGE.match(comment):
            raise ValueError(
                f"the range {comment.split(':')[0]!r} is not understood (write '> a', '< b' or "
                "'in [a, b)' with ( or [ at either end, a and b numbers or inf, then ':')"
            )
        return None
    if m["op"]:
        bound = _number(m["bound"])
        if m["op"] == ">":
            return Range(lo=bound, text=f"> {m['bound']}")
        return Range(hi=bound, text=f"< {m['bound']}")
    lo, hi = _number(m["lo"]), _number(m["hi"])
    lo_closed, hi_closed = m["lb"] == "[", m["rb"] == "]"
    if not (lo < hi or (lo == hi and lo_closed and hi_closed)):
        raise ValueError(f"the range 'in {m['lb']}{m['lo']}, {m['hi']}{m['rb']}' is empty")
    if hi == math.inf and lo != -math.inf:
        text = f"{'>=' if lo_closed else '>'} {m['lo']}"
    elif lo == -math.inf and hi != math.inf:
        text = f"{'<=' if hi_closed else '<'} {m['hi']}"
    else:
        text = f"in {m['lb']}{m['lo']}, {m['hi']}{m['rb']}"
    return Range(lo, lo_closed, hi, hi_closed, text)


# The common parameters' ranges, whatever the page's comment says.
COMMON_RANGES = {"seed": Range(lo=0, lo_closed=True, hi=2**63, text="in [0, 2**63)")}


@dataclass(frozen=True)
class Parameter:
    """A name assigned in a page's parameters cell."""

    name: str
    source: str  # the default as written
    default: object  # ... evaluated with ast.literal_eval
    range: Range | None
    help: str

    @property
    def declaration(self) -> str:
        return f"{self.name} = {self.source}"


def read_page(page: Page):
    """The page as a notebook, with the kernel and cell tags papermill expects."""
    import jupytext

    nb = jupytext.read(page.source)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    return nb


def _element_kind(values) -> str | None:
    kinds = {_kind(v) for v in values}
    if kinds <= {"int", "float"} and "float" in kinds:
        return "float"
    return kinds.pop() if len(kinds) == 1 else None


def _kind(default) -> str | None:
    if default is None:
        return None
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", list)):
        if isinstance(default, types):
            return kind
    return type(default).__name__


_KIND_NAMES = {"bool": "a bool", "int": "an int", "float": "a number", "str": "a string", "list": "a list"}


def _parse_cell(page: Page, nb, cell) -> dict:
    """The parameters assigned in ``cell``, the first cell of ``nb`` tagged ``parameters``."""
    from papermill.inspection import _infer_parameters

    try:
        tree = ast.parse(cell.source)
    except SyntaxError as err:
        raise BookError(f"page {page.name!r}: its parameters cell is not valid Python ({err.msg})") from None
    assigned = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for t in targets:
            if isinstance(t, ast.Name):
                assigned.setdefault(t.id, node.lineno)
    declared = {p.name: p for p in _infer_parameters(nb)}
    missed = {n: line for n, line in assigned.items() if n not in declared}
    if missed:
        raise BookError(
            f"page {page.name!r}: papermill does not see the parameter(s) {sorted(missed)} of its "
            f"parameters cell (line(s) {sorted(missed.values())} of the cell: a second '=' on the "
            "line? write a range as '> a' or 'in [a, inf)', not '>= a')"
        )
    out = {}
    for name, p in declared.items():
        where = f"page {page.name!r} declares {name} = {p.default}"
        try:
            default = ast.literal_eval(p.default)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise BookError(f"{where}: the default is not a literal") from None
        try:
            rng = parse_range(p.help)
        except ValueError as err:
            raise BookError(f"{where}  # {p.help}: {err}") from None
        param = Parameter(name, p.default, default, rng, p.help)
        if rng is not None:
            kind = _element_kind(default) if isinstance(default, list) else _kind(default)
            if kind not in ("int", "float"):
                raise BookError(f"{where}: a range needs a numeric default (or a list of numbers)")
            check_value(page, param, default, where)
        out[name] = param
    return out


_DECLARED_CACHE: dict = {}


def declared_parameters(page: Page) -> dict[str, Parameter]:
    """The parameters assigned in the page's ``parameters`` cell, by name."""
    stat = page.source.stat()
    key = (str(page.source), stat.st_mtime_ns, stat.st_size)
    if key not in _DECLARED_CACHE:
        nb = read_page(page)
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        if not cells:
            raise BookError(f"page {page.name!r} ({page.source}) has no cell tagged 'parameters'")
        _DECLARED_CACHE[key] = _parse_cell(page, nb, cells[0])
    return _DECLARED_CACHE[key]


def check_value(page: Page, param: Parameter, value, origin: str):
    """``value`` (from ``origin``: a flag or a place in params.yml) if it fits ``param``'s
    declared type and range, as it will be injected (an int for a float default becomes a
    float); else a one-line :class:`BookError` naming ``origin``."""
    decl = f"(page {page.name} declares {param.declaration})"
    kind = _kind(param.default)
    if kind is None:
        return value

    def one(v, kind, what):
        if kind is None:
            return v
        ok = {
            "bool": isinstance(v, bool),
            "int": isinstance(v, int) and not isinstance(v, bool),
            "float": isinstance(v, (int, float)) and not isinstance(v, bool),
            "str": isinstance(v, str),
            "list": isinstance(v, list),
        }.get(kind, isinstance(v, type(param.default)))
        if not ok:
            raise BookError(f"{origin}: {what}{v!r} is not {_KIND_NAMES.get(kind, 'a ' + kind)} {decl}")
        if kind == "float":
            v = float(v)
            if math.isnan(v):
                raise BookError(f"{origin}: {what}nan is not a number {decl}")
        rng = COMMON_RANGES.get(param.name) or param.range
        if kind in ("int", "float") and rng is not None and v not in rng:
            raise BookError(f"{origin}: {what}{v!r} must be {rng}")
        return v

    if kind != "list":
        return one(value, kind, "")
    value = one(value, "list", "")
    if param.default and not value:
        raise BookError(f"{origin}: [] must not be empty {decl}")
    elem = _element_kind(param.default)
    return [one(v, elem, f"element {i}: ") for i, v in enumerate(value)]


def _origin(key: str, section: str, page: Page | None = None) -> str:
    if section == "-p":
        return f"-p {key}"
    if section == "profile":
        return "--profile"
    if section == "flag":
        return "--" + key.replace("_", "-")
    if section == "common":
        return f"{PARAMS_FILE}[common] {key}"
    return f"{PARAMS_FILE}[{section}][{page.name}] {key}"


def resolve_parameters(page: Page, profile: str, params: dict, common: dict, overrides: dict) -> dict:
    """The values injected into ``page``: params.yml's ``common``, the flags in ``common``
    (``device``, ``seed``, ...), ``profile``, the profile's entry for the page, then
    ``overrides`` (``-p``), each checked against the page's declaration."""
    declared = declared_parameters(page)
    missing = [k for k in COMMON_PARAMETERS if k not in declared]
    if missing:
        raise BookError(f"page {page.name!r} does not declare the common parameter(s) {missing}")
    sources = [
        ("common", params.get("common") or {}),
        ("flag", common),
        ("profile", {"profile": profile}),
        (profile, (params.get(profile) or {}).get(page.name) or {}),
        ("-p", overrides),
    ]
    values, origins = {}, {}
    for section, table in sources:
        for key, value in table.items():
            if key == "profile" and section != "profile":
                raise BookError(f"{_origin(key, section, page)}: the profile is set with --profile")
            values[key], origins[key] = value, _origin(key, section, page)
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise BookError(
            f"{origins[unknown[0]]}: unknown parameter(s) {unknown} for page {page.name!r}; "
            f"it accepts {sorted(declared)}"
        )
    return {k: check_value(page, declared[k], v, origins[k]) for k, v in values.items()}


def select_pages(names: list[str] | None, root: Path = ROOT) -> list[Page]:
    pages = executable_pages(root)
    if not names:
        return pages
    by_name = {p.name: p for p in pages}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise BookError(f"unknown page(s) {unknown}; pages are {sorted(by_name)}")
    return [by_name[n] for n in names]


def check_params_file(params: dict, root: Path = ROOT) -> None:
    """Every page named in params.yml must exist (catches typos that would be ignored), and
    every value it gives, under every profile, must fit the page's declaration."""
    pages = {p.name: p for p in executable_pages(root)}
    for profile in PROFILES:
        extra = set((params.get(profile) or {})) - set(pages)
        if extra:
            raise BookError(f"{PARAMS_FILE}[{profile}] names unknown page(s) {sorted(extra)}")
    for profile in PROFILES:
        for page in pages.values():
            resolve_parameters(page, profile, params, {}, {})


def parse_overrides(pairs) -> dict:
    """``-p KEY VALUE`` pairs, values read as YAML 1.2; a key given twice is an error."""
    overrides = {}
    for key, text in pairs:
        if key in overrides:
            raise BookError(f"-p {key}: given twice")
        try:
            overrides[key] = yaml12.parse_value(text, what=f"-p {key}")
        except ValueError as err:
            raise BookError(str(err)) from None
    return overrides


def parse_seed(text: str) -> int:
    """``--seed``: an int in [0, 2**63)."""
    try:
        seed = yaml12.parse_value(text, what="--seed")
    except ValueError as err:
        raise BookError(str(err)) from None
    rng = COMMON_RANGES["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed not in rng:
        raise BookError(f"--seed: {text!r} is not an int {rng}")
    return seed
