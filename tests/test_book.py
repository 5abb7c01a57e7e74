"""The book runner: page discovery, parameter resolution and its error messages."""

import subprocess
import sys

import pytest
import yaml

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
    assert declared["profile"].strip("'\"") == "ci", "page defaults are the ci profile's values"


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
