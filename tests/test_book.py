"""The book runner: page discovery, parameter resolution and its error messages."""

import json
import re
import subprocess
import sys

import nbformat
import papermill
import pytest
import yaml
from papermill.exceptions import PapermillExecutionError

from clipcore import book

PAGES = book.executable_pages()


def test_every_toc_page_exists():
    toc = yaml.safe_load((book.ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + book._toc_files(toc["parts"])
    for f in files:
        assert (book.ROOT / f).with_suffix(".py").exists() or (book.ROOT / f).with_suffix(".md").exists(), f


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_declares_common_parameters(page):
    declared = book.declared_parameters(page)
    assert set(book.COMMON_PARAMETERS) <= set(declared)
    assert declared["profile"].default == "ci", "page defaults are the ci profile's values"


@pytest.mark.parametrize("profile", book.PROFILES)
def test_params_file_resolves_for_every_page_and_profile(profile):
    params = book.load_params()
    book.check_params_file(params)
    for page in PAGES:
        values = book.resolve_parameters(page, profile, params, {}, {})
        assert values["profile"] == profile


def test_overrides_win_and_unknown_parameter_is_named():
    params = book.load_params()
    page = next(p for p in PAGES if p.name == "relaxed_smoothness")
    values = book.resolve_parameters(page, "smoke", params, {"seed": 7}, {"n_grid": 11})
    assert values["seed"] == 7 and values["n_grid"] == 11
    with pytest.raises(book.BookError, match="no_such_knob"):
        book.resolve_parameters(page, "smoke", params, {}, {"no_such_knob": 1})


def test_unknown_page_is_named():
    with pytest.raises(book.BookError, match="not_a_page"):
        book.select_pages(["not_a_page"])


def test_params_file_typo_is_caught():
    with pytest.raises(book.BookError, match="relaxed_smoothnes"):
        book.check_params_file({"ci": {"relaxed_smoothnes": {}}})


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "clipcore.book", *args], capture_output=True, text=True, cwd=book.ROOT
    )


def test_cli_errors_name_the_culprit():
    r = _cli("--profile", "huge", "--list")
    assert r.returncode == 2 and "huge" in r.stderr
    r = _cli("--page", "nope", "--list")
    assert r.returncode == 2 and "nope" in r.stderr
    r = _cli("--page", "relaxed_smoothness", "-p", "bogus", "1", "--list")
    assert r.returncode == 2 and "bogus" in r.stderr


def test_cli_list_shows_resolved_parameters():
    r = _cli("--profile", "smoke", "--page", "relaxed_smoothness", "-p", "n_grid", "33", "--list")
    assert r.returncode == 0, r.stderr
    assert "'n_grid': 33" in r.stdout and "'profile': 'smoke'" in r.stdout


def test_clipcore_main_dispatches():
    r = subprocess.run(
        [sys.executable, "-m", "clipcore", "book", "--profile", "nope", "--list"],
        capture_output=True,
        text=True,
        cwd=book.ROOT,
    )
    assert r.returncode == 2 and "nope" in r.stderr
    r = subprocess.run([sys.executable, "-m", "clipcore", "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


# --- strict page parameters -------------------------------------------------------------------


def _page(name):
    return next(p for p in PAGES if p.name == name)


def _resolve(page, overrides=None, common=None, params=None, profile="smoke"):
    params = book.load_params() if params is None else params
    return book.resolve_parameters(_page(page), profile, params, common or {}, overrides or {})


@pytest.mark.parametrize(
    "page, key, value, message",
    [
        (
            "relaxed_smoothness",
            "n_grid",
            "abc",
            r"^-p n_grid: 'abc' is not an int \(page relaxed_smoothness declares n_grid = 200001\)$",
        ),
        ("relaxed_smoothness", "n_grid", True, r"^-p n_grid: True is not an int"),
        ("relaxed_smoothness", "n_grid", 2.0, r"^-p n_grid: 2.0 is not an int"),
        ("relaxed_smoothness", "n_grid", -5, r"^-p n_grid: -5 must be > 1$"),
        ("relaxed_smoothness", "x_max", "1e1", r"^-p x_max: '1e1' is not a number"),
        ("relaxed_smoothness", "x_max", float("nan"), r"^-p x_max: nan is not a number"),
        ("relaxed_smoothness", "device", 3, r"^-p device: 3 is not a string"),
        ("relaxed_smoothness", "seed", -1, r"^-p seed: -1 must be in \[0, 2\*\*63\)$"),
        ("relaxed_smoothness", "seed", 2**63, r"^-p seed: 9223372036854775808 must be in \[0, 2\*\*63\)$"),
        (
            "clipped_vs_gd",
            "M_grid",
            [],
            r"^-p M_grid: \[\] must not be empty \(page clipped_vs_gd declares M_grid = \[",
        ),
        ("clipped_vs_gd", "M_grid", 10.0, r"^-p M_grid: 10.0 is not a list"),
        ("clipped_vs_gd", "M_grid", [10, "a"], r"^-p M_grid: element 1: 'a' is not a number"),
        ("clipped_vs_gd", "M_grid", [10, -1], r"^-p M_grid: element 1: -1.0 must be > 0$"),
        ("lstm_smoothness", "level", 1, r"^-p level: 1.0 must be in \(0, 1\)$"),
        ("incremental_methods", "batch_sizes", [1, 2.5], r"^-p batch_sizes: element 1: 2.5 is not an int"),
        ("training_curves", "tail", 0, r"^-p tail: 0.0 must be in \(0, 1\]$"),
    ],
)
def test_bad_override_is_named_with_its_flag(page, key, value, message):
    with pytest.raises(book.BookError, match=message):
        _resolve(page, {key: value})


def test_good_overrides_are_injected_with_the_declared_type():
    values = _resolve("relaxed_smoothness", {"n_grid": 2001, "x_max": 10})
    assert values["n_grid"] == 2001 and values["x_max"] == 10.0 and isinstance(values["x_max"], float)
    values = _resolve("clipped_vs_gd", {"M_grid": [10, 100.0]})
    assert values["M_grid"] == [10.0, 100.0] and all(isinstance(m, float) for m in values["M_grid"])
    # a None default takes anything (data_dir: None or a path)
    assert _resolve("relaxed_smoothness", {"data_dir": "/data"})["data_dir"] == "/data"
    assert _resolve("relaxed_smoothness", {"data_dir": None})["data_dir"] is None


def test_flags_and_params_file_values_are_checked_and_named():
    with pytest.raises(book.BookError, match=r"^--device: 3 is not a string"):
        _resolve("relaxed_smoothness", common={"device": 3})
    with pytest.raises(
        book.BookError, match=r"^book/params.yml\[smoke\]\[relaxed_smoothness\] n_grid: -5 must be > 1$"
    ):
        book.check_params_file({"smoke": {"relaxed_smoothness": {"n_grid": -5}}})
    with pytest.raises(book.BookError, match=r"^book/params.yml\[common\] seed: 'x' is not an int"):
        book.check_params_file({"common": {"seed": "x"}})
    with pytest.raises(
        book.BookError, match=r"^book/params.yml\[paper\]\[lower_bound\] n_h: 2000.0 is not an int"
    ):
        book.check_params_file({"paper": {"lower_bound": {"n_h": 2e3}}})
    with pytest.raises(book.BookError, match=r"^-p profile: the profile is set with --profile"):
        _resolve("relaxed_smoothness", {"profile": "paper"})


def test_unknown_parameter_names_its_origin():
    with pytest.raises(book.BookError, match=r"^book/params.yml\[ci\]\[relaxed_smoothness\] n_gird: unknown"):
        book.check_params_file({"ci": {"relaxed_smoothness": {"n_gird": 3}}})


def _params_file(tmp_path, text):
    (tmp_path / "book").mkdir(exist_ok=True)
    (tmp_path / "book" / "params.yml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "smoke:\n  relaxed_smoothness: {n_grid: 2001\nci: {}\n",
            r"^book/params.yml: not valid YAML \(line 3: ",
        ),
        ("smoke: {}\nsmoke: {}\n", r"^book/params.yml: not valid YAML \(line 2: duplicate key 'smoke'\)$"),
        ("", r"^book/params.yml is empty$"),
        ("# nothing but a comment\n", r"^book/params.yml is empty$"),
        ("[1, 2]\n", r"^book/params.yml: expected a mapping of profiles"),
        (
            "smoke:\n  relaxed_smoothness: 3\n",
            r"^book/params.yml\[smoke\]\[relaxed_smoothness\]: expected a mapping",
        ),
        ("smokey: {}\n", r"unknown profile.*smokey"),
    ],
)
def test_malformed_params_file_is_one_line_naming_it(tmp_path, text, message):
    with pytest.raises(book.BookError, match=message) as err:
        book.load_params(_params_file(tmp_path, text))
    assert "\n" not in str(err.value)


def test_params_file_is_yaml_1_2(tmp_path):
    params = book.load_params(_params_file(tmp_path, "smoke:\n  clipped_vs_normalized: {eps: 1e-3}\n"))
    assert params["smoke"]["clipped_vs_normalized"]["eps"] == 0.001


@pytest.mark.parametrize(
    "comment, text, inside, outside",
    [
        ("> 1: grid points", "> 1", [2, 1.5], [1, -5]),
        ("> 0", "> 0", [1e-9], [0, -1]),
        ("< 1: x", "< 1", [0.5, -3], [1, 2]),
        ("in (0, 1): level", "in (0, 1)", [0.5], [0, 1]),
        ("in [0, 1]: p", "in [0, 1]", [0, 1], [-0.1, 1.1]),
        ("in (0, 1]", "in (0, 1]", [1], [0]),
        ("in [0, inf): slack", ">= 0", [0, 1e300], [-1e-9]),
        ("in (-inf, 2]", "<= 2", [2, -1e300], [2.5]),
    ],
)
def test_range_convention(comment, text, inside, outside):
    rng = book.parse_range(comment)
    assert str(rng) == text
    assert all(x in rng for x in inside) and not any(x in rng for x in outside)


@pytest.mark.parametrize("comment", ["grid points", "... and more", "in units of sigma", ""])
def test_plain_comment_has_no_range(comment):
    assert book.parse_range(comment) is None


@pytest.mark.parametrize("comment", [">= 2: x", "> two: x", "in (0, 1: x", "in (1, 0)", "> 0 grid points"])
def test_malformed_range_is_an_error(comment):
    with pytest.raises(ValueError):
        book.parse_range(comment)


def _write_page(tmp_path, cell: str) -> book.Page:
    src = tmp_path / "demo.py"
    src.write_text(
        '# %% tags=["parameters"]\nprofile = "ci"\ndevice = "auto"\nseed = 0\ndata_dir = None\n'
        f'results_dir = "results"\n{cell}\n\n# %%\nprint(1)\n'
    )
    return book.Page("demo", src)


def test_page_range_annotations_are_checked(tmp_path):
    page = _write_page(tmp_path, "n = 5  # > 1: count\nlevels = [0.5, 0.9]  # in (0, 1): levels")
    declared = book.declared_parameters(page)
    assert str(declared["n"].range) == "> 1" and declared["n"].default == 5
    with pytest.raises(book.BookError, match=r"^-p levels: element 0: 1.0 must be in \(0, 1\)$"):
        book.resolve_parameters(page, "smoke", {}, {}, {"levels": [1]})
    # a '>=' makes papermill drop the line (a second '='), so the runner refuses it
    with pytest.raises(book.BookError, match=r"papermill does not see the parameter\(s\) \['m'\]"):
        book.declared_parameters(_write_page(tmp_path, "m = 5  # >= 2: count"))
    with pytest.raises(book.BookError, match=r"declares m = 1: .*must be > 1"):
        book.declared_parameters(_write_page(tmp_path, "m = 1  # > 1: count"))
    with pytest.raises(book.BookError, match=r"declares m = 'x': a range needs a numeric default"):
        book.declared_parameters(_write_page(tmp_path, "m = 'x'  # > 1: count"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_defaults_are_literals_within_their_ranges(page):
    declared = book.declared_parameters(page)  # raises on a default outside its range
    for p in declared.values():
        if p.range is not None:
            values = p.default if isinstance(p.default, list) else [p.default]
            assert all(v in p.range for v in values), p


def _cli_error(*args):
    r = _cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_cli_bad_values_are_one_line_errors():
    line = _cli_error("--profile", "smoke", "--page", "relaxed_smoothness", "-p", "n_grid", "abc", "--list")
    assert line == "error: -p n_grid: 'abc' is not an int (page relaxed_smoothness declares n_grid = 200001)"
    line = _cli_error("--page", "clipped_vs_gd", "-p", "M_grid", "[]", "--list")
    assert line.startswith("error: -p M_grid: [] must not be empty")
    line = _cli_error("--page", "clipped_vs_gd", "-p", "M_grid", "[1,", "--list")
    assert "-p M_grid" in line and "not valid YAML" in line
    line = _cli_error("--page", "relaxed_smoothness", "-p", "n_grid", "3", "-p", "n_grid", "4", "--list")
    assert line == "error: -p n_grid: given twice"


@pytest.mark.parametrize("seed", ["-1", "abc", "1.5", "true", str(2**63)])
def test_cli_seed_must_be_an_int_in_range(seed):
    line = _cli_error("--page", "relaxed_smoothness", "--seed", seed, "--list")
    assert line == f"error: --seed: {seed!r} is not an int in [0, 2**63)"


def test_cli_values_are_yaml_1_2():
    r = _cli(
        "--profile", "smoke", "--page", "clipped_vs_normalized", "-p", "eps", "1e-3", "--seed", "7", "--list"
    )
    assert r.returncode == 0, r.stderr
    assert "'eps': 0.001" in r.stdout and "'seed': 7" in r.stdout


# --- the table of contents ----------------------------------------------------------------------


def _toc_root(tmp_path, *files):
    (tmp_path / "book").mkdir(exist_ok=True)
    chapters = "".join(f"  - file: {f}\n" for f in files)
    (tmp_path / "_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nchapters:\n{chapters}")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    return tmp_path


def test_toc_entry_without_source_is_named(tmp_path):
    root = _toc_root(tmp_path, "book/ghost")
    with pytest.raises(book.BookError, match=r"^_toc.yml: page 'book/ghost' has no source"):
        book.executable_pages(root)
    # an executed notebook left by an earlier run is not a source either
    (root / "book" / "ghost.ipynb").write_text('{"cells": [], "metadata": {"papermill": {}}, "nbformat": 4}')
    with pytest.raises(book.BookError, match=r"book/ghost.ipynb is an executed notebook"):
        book.executable_pages(root)


def test_toc_accepts_static_pages_and_suffixes(tmp_path):
    root = _toc_root(tmp_path, "book/notes.md", "book/ref", "book/nb", "book/run.py")
    (root / "book" / "notes.md").write_text("# Notes\n")
    (root / "book" / "ref.rst").write_text("Ref\n===\n")
    (root / "book" / "nb.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4}')
    (root / "book" / "run.py").write_text("# %%\n")
    assert [p.name for p in book.executable_pages(root)] == ["run"]


def test_malformed_toc_is_named(tmp_path):
    (tmp_path / "_toc.yml").write_text("root: [\n")
    with pytest.raises(book.BookError, match=r"^_toc.yml: not valid YAML \(line 2: "):
        book.executable_pages(tmp_path)


# --- interrupted and failed pages ---------------------------------------------------------------


def _strict_json(path):
    def reject(constant):
        raise ValueError(f"{path.name} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=reject)


@pytest.fixture
def book_dir(tmp_path, monkeypatch):
    """An output directory holding a good notebook of relaxed_smoothness from an earlier run."""
    monkeypatch.delenv("MPLBACKEND", raising=False)  # main() pops it; restore it afterwards
    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("the good one")])
    nbformat.write(good, tmp_path / "relaxed_smoothness.ipynb")
    return tmp_path


def _run_main(book_dir, *pages):
    argv = ["--profile", "smoke", "--output-dir", str(book_dir), "--results-dir", str(book_dir / "r")]
    try:
        return book.main([*argv, *(a for p in pages for a in ("--page", p))])
    except KeyboardInterrupt:
        return "KeyboardInterrupt escaped main()"


def test_interrupted_page_keeps_the_previous_notebook(book_dir, monkeypatch):
    calls = []

    def interrupted(input_path, output_path, **kw):
        calls.append(output_path)
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("partial")]), output_path)
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    good = (book_dir / "relaxed_smoothness.ipynb").read_text()
    assert _run_main(book_dir, "relaxed_smoothness", "growth_lemma") == 130
    assert len(calls) == 1, "the run stops at the interruption"
    assert (book_dir / "relaxed_smoothness.ipynb").read_text() == good
    assert sorted(p.name for p in book_dir.iterdir()) == ["_status.json", "relaxed_smoothness.ipynb"]
    assert not list(book.ROOT.joinpath("book").glob(".relaxed_smoothness.in.*"))
    (entry,) = _strict_json(book_dir / "_status.json")["pages"]
    assert entry == {
        "page": "relaxed_smoothness",
        "seconds": None,
        "ok": False,
        "profile": "smoke",
        "interrupted": True,
    }


def test_other_exception_keeps_the_previous_notebook(book_dir, monkeypatch):
    def crashed(input_path, output_path, **kw):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("partial")]), output_path)
        raise RuntimeError("kernel died")

    monkeypatch.setattr(papermill, "execute_notebook", crashed)
    good = (book_dir / "relaxed_smoothness.ipynb").read_text()
    assert _run_main(book_dir, "relaxed_smoothness") == 1
    assert (book_dir / "relaxed_smoothness.ipynb").read_text() == good
    assert not (book_dir / ".relaxed_smoothness.out.ipynb").exists()
    (entry,) = _strict_json(book_dir / "_status.json")["pages"]
    assert entry["ok"] is False and entry["seconds"] is None and "interrupted" not in entry


def test_failed_cell_keeps_the_notebook_with_the_error(book_dir, monkeypatch):
    def failed(input_path, output_path, **kw):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
        nbformat.write(nb, output_path)
        raise PapermillExecutionError(0, 1, "1 / 0", "ZeroDivisionError", "division by zero", [])

    monkeypatch.setattr(papermill, "execute_notebook", failed)
    assert _run_main(book_dir, "relaxed_smoothness", "growth_lemma") == 1
    assert "1 / 0" in (book_dir / "relaxed_smoothness.ipynb").read_text(), "the failed notebook is kept"
    assert not (book_dir / ".relaxed_smoothness.out.ipynb").exists()
    status = _strict_json(book_dir / "_status.json")
    assert [(e["page"], e["ok"], e["seconds"]) for e in status["pages"]] == [
        ("relaxed_smoothness", False, None),
        ("growth_lemma", False, None),
    ]


def test_status_file_is_strict_json_even_after_an_old_nan(tmp_path):
    path = tmp_path / "_status.json"
    path.write_text('{"pages": [{"page": "old", "seconds": NaN, "ok": false, "profile": "ci"}]}')
    book.write_status([{"page": "new", "seconds": 1.5, "ok": True, "profile": "ci"}], "ci", path)
    assert [e["seconds"] for e in _strict_json(path)["pages"]] == [None, 1.5]


def test_status_rows_read_failed_and_interrupted_entries():
    from clipcore.book.runner import page_rows

    status = {
        "pages": [
            {"page": "a", "seconds": 2.0, "ok": True, "profile": "ci"},
            {"page": "b", "seconds": None, "ok": False, "profile": "ci"},
            {"page": "c", "seconds": None, "ok": False, "profile": "ci", "interrupted": True},
            {"page": "d", "seconds": float("nan"), "ok": False, "profile": "ci"},
            {"page": "status", "seconds": 1.0, "ok": True, "profile": "ci"},
        ]
    }
    rows = page_rows(status)
    assert [(r["page"], r["outcome"], r["seconds"]) for r in rows] == [
        ("a", "ok", 2.0),
        ("b", "failed", None),
        ("c", "interrupted", None),
        ("d", "failed", None),
        ("total", "", 2.0),
    ]


# --- what the runner adds to an executed page -------------------------------------------------


def _executed(page, injected: str):
    """The notebook papermill would write for ``page``: its cells plus an injected cell."""
    nb = book.read_page(page)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata["tags"])
    cell = nbformat.v4.new_code_cell(injected)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(i + 1, cell)
    return nb


def test_parameter_summary_names_the_profile_and_what_differs():
    from clipcore.book.provenance import parameter_summary

    page = _page("relaxed_smoothness")
    values = _resolve("relaxed_smoothness")  # smoke: n_grid, n_poly, rtol differ from the page's defaults
    text = parameter_summary(page, values)
    assert text.startswith("profile smoke; ") and "n_grid = 2001" in text and "seed" not in text
    assert parameter_summary(page, {"profile": "ci"}) == "profile ci; the page's defaults"
    long = parameter_summary(page, {"profile": "ci", "degrees": list(range(3, 200))})
    assert len(long) <= 150 and long.endswith("…")


def test_annotate_adds_the_provenance_note_and_collapses_the_injected_cell():
    from clipcore.book.provenance import PROVENANCE_CLASS, annotate, provenance_note

    page = _page("clipped_vs_gd")
    values = _resolve("clipped_vs_gd")
    note = provenance_note(page, values, commit="abc1234+", started=0.0, seconds=12.34, device="cpu")
    assert "- **commit** `abc1234+`" in note and "1970-01-01 00:00 UTC, in 12.3 s" in note
    assert "{download}`clipped_vs_gd.py <clipped_vs_gd.py>`" in note
    assert "<_data/clipped_vs_gd/clipped_vs_gd.ipynb>" in note and f":class: {PROVENANCE_CLASS}" in note
    nb = _executed(page, 'profile = "smoke"')
    annotate(nb, page, values, note)
    title = nb.cells[0].source.split("\n")
    assert title[0] == "# Clipped GD versus GD" and title[2] == ":::{margin} Provenance"
    (injected,) = [c for c in nb.cells if "injected-parameters" in c.metadata["tags"]]
    assert "hide-cell" in injected.metadata["tags"]
    assert injected.metadata["mystnb"]["code_prompt_show"].startswith("Parameters of this run: profile smoke")


def test_a_finished_page_is_annotated_and_its_source_notebook_written(book_dir, monkeypatch):
    seen_env = {}

    def finished(input_path, output_path, **kw):
        import os

        seen_env.update({k: os.environ.get(k) for k in ("CLIPCORE_PAGE", "CLIPCORE_PAGE_DIR")})
        nbformat.write(_executed(_page("status"), 'profile = "smoke"'), output_path)

    monkeypatch.setattr(papermill, "execute_notebook", finished)
    assert _run_main(book_dir, "status") == 0
    assert seen_env == {"CLIPCORE_PAGE": "status", "CLIPCORE_PAGE_DIR": str(book_dir.resolve())}
    done = nbformat.read(book_dir / "status.ipynb", as_version=4)
    assert ":::{margin} Provenance" in done.cells[0].source
    source = nbformat.read(book_dir / "_data" / "status" / "status.ipynb", as_version=4)
    tagged = [c for c in source.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and not any(c.get("outputs") for c in source.cells if c.cell_type == "code")
    assert source.metadata["kernelspec"]["name"] == "python3"
    assert (book_dir / "_data" / ".gitignore").exists()
    assert _strict_json(book_dir / "_status.json")["commit"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_parameter_says_what_it_means(page):
    bare = [name for name, p in book.declared_parameters(page).items() if not p.help.strip()]
    assert not bare, f"{page.name}: parameters without a comment saying what they mean: {bare}"


def test_repeated_scripts_are_dropped_from_every_page():
    from sphinx.builders.html._assets import _JavaScript

    from clipcore.book.sphinx_fixes import dedupe_scripts

    first = _JavaScript(None, body="const THEBE_JS_URL = 1")
    context = {
        "script_files": [
            first,
            _JavaScript("a.js"),
            _JavaScript("", body="const THEBE_JS_URL = 1"),
            _JavaScript("a.js"),
        ]
    }
    dedupe_scripts(None, "p", "page.html", context, None)
    assert context["script_files"] == [first, _JavaScript("a.js")]


def test_chapter_summary_counts_findings_by_page_and_titles_are_plain_text(tmp_path):
    from clipcore.book.scorecard import chapter_summary_html, page_titles

    src = tmp_path / "p.py"
    src.write_text("# %% [markdown]\n# # Smoothed clipping: the $(L_0, L_1)$ step\n")
    assert page_titles([book.Page("p", src)]) == {"p": "Smoothed clipping: the (L₀, L₁) step"}
    claims = [
        dict(page="a", kind="finding", status="holds"),
        dict(page="a", kind="finding", status="fails"),
        dict(page="a", kind="identity", status="holds"),
        dict(page="b", kind="finding", status="inconclusive"),
    ]
    html = chapter_summary_html(claims, {"a": "Page <A>"})
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    assert len(rows) == 4, "header, two pages, the totals"
    assert '<a href="a.html">Page &lt;A&gt;</a>' in rows[1] and '<a href="b.html">b</a>' in rows[2]
    cells = lambda row: re.findall(r"<td[^>]*>(.*?)</td>", row)[1:]
    assert cells(rows[1]) == ["1", "1", "–", "–", "1"] and cells(rows[3]) == ["1", "1", "1", "–", "1"]
