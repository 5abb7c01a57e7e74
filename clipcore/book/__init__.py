"""The book runner: execute the book's pages with papermill under a profile.

    python -m clipcore.book [--profile ci] [--page NAME ...] [-p KEY VALUE ...]

Each page listed in ``_toc.yml`` whose source is a jupytext percent-format ``book/NAME.py``
is read with jupytext, executed with papermill (kernel ``python3``) with the parameters of
``book/params.yml[profile][NAME]`` plus the common ones (``profile``, ``device``, ``seed``,
``data_dir``, ``results_dir``) and any ``-p`` overrides, and written to ``book/NAME.ipynb``,
where Jupyter Book (``execute_notebooks: off``) reads it. Modules: :mod:`~clipcore.book.sources`
(the toc and params.yml), :mod:`~clipcore.book.parameters` (declarations and checks),
:mod:`~clipcore.book.runner` (execution and status). A toc entry must have a source
(``NAME.py``, or a static ``NAME.md`` / ``.rst`` / ``.ipynb`` page that the runner does not
execute). Unknown pages, profiles and parameters are errors that name the culprit; the
parameters a page accepts are exactly the names assigned in its cell tagged ``parameters``.

Values. ``-p`` values, ``--seed`` and ``book/params.yml`` are read as YAML 1.2
(:mod:`clipcore.yaml12`: ``1e-3`` is a float). Every value injected into a page, wherever it
came from, must have the type of the page's default (the literal in its parameters cell): an
int default takes an int (not a bool); a float default an int or a float (injected as a
float; never NaN); a str default a str; a bool default a bool; a list default a non-empty list
(when the default is non-empty) whose elements have the type of the default's elements; a
``None`` default anything. ``seed`` must be an int in [0, 2**63). A malformed value is a
one-line ``error: ...`` (exit status 2) naming the key and the flag or file it came from.

Ranges. A page states the range of a numeric parameter at the start of the parameter's
trailing comment, followed by a colon (or ending the comment)::

    n_grid = 200001  # > 1: grid points per function
    eps = 0.01  # > 0: target gradient norm
    tol = 0.0  # in [0, inf): slack
    level = 0.95  # in (0, 1): confidence level

The forms are ``> a``, ``< b`` and the intervals ``in (a, b)``, ``in [a, b]``, ``in [a, b)``,
``in (a, b]``, where a and b are numbers or ``inf`` / ``-inf`` (``in [0, inf)`` is "at least
0"). For a list the range applies to every element. There is no ``>=`` / ``<=``: papermill
ignores a parameter whose line holds a second ``=``, so the runner rejects such a line; a
comment that starts like a range but is not one is an error too, and so is a default outside
its own range.

Interruptions. The executed notebook replaces ``book/NAME.ipynb`` only when the page finished
or failed in a cell (papermill's ``PapermillExecutionError``; that notebook shows the error).
On Ctrl-C, or any other exception, the previous notebook stays and the partial one is deleted;
an interruption is recorded in ``_status.json`` (``"interrupted": true``), stops the run and
exits with status 130.
"""

from ..profiles import PROFILES
from .parameters import (
    COMMON_RANGES,
    Parameter,
    Range,
    check_params_file,
    check_value,
    declared_parameters,
    parse_overrides,
    parse_range,
    parse_seed,
    read_page,
    resolve_parameters,
    select_pages,
)
from .runner import execute_page, main, write_status
from .sources import (
    COMMON_PARAMETERS,
    KERNEL,
    PARAMS_FILE,
    ROOT,
    STATIC_SUFFIXES,
    BookError,
    Page,
    _toc_files,
    executable_pages,
    load_params,
)

__all__ = [
    "PROFILES",
    "COMMON_PARAMETERS",
    "COMMON_RANGES",
    "KERNEL",
    "PARAMS_FILE",
    "ROOT",
    "STATIC_SUFFIXES",
    "BookError",
    "Page",
    "Parameter",
    "Range",
    "executable_pages",
    "load_params",
    "read_page",
    "declared_parameters",
    "parse_range",
    "check_value",
    "resolve_parameters",
    "select_pages",
    "check_params_file",
    "parse_overrides",
    "parse_seed",
    "execute_page",
    "write_status",
    "main",
    "_toc_files",
]
