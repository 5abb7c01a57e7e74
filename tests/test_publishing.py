"""The publishing workflow and the citation file are valid and do what the README promises."""

import subprocess
import sys

import pytest
import yaml

from clipcore.book import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def _validate(schema: str, path) -> subprocess.CompletedProcess:
    # check-jsonschema ships the GitHub-workflow and CFF schemas: no network needed.
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "schema, path",
    [("vendor.github-workflows", WORKFLOW), ("vendor.citation-file-format", ROOT / "CITATION.cff")],
    ids=["workflow", "citation"],
)
def test_files_validate_against_their_schemas(schema, path):
    r = _validate(schema, path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_broken_workflow_is_rejected(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  build:\n    steps: not-a-list\n")
    assert _validate("vendor.github-workflows", bad).returncode != 0


def test_workflow_builds_the_ci_book_caches_results_and_deploys_pages():
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as True
    assert on["push"]["branches"] == ["main"] and on["schedule"]
    build = wf["jobs"]["build"]["steps"]
    runs = " ".join(s.get("run", "") for s in build)
    assert "make book PROFILE=ci" in runs and "make test" in runs
    cache = next(s for s in build if s.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == "results"
    for part in ("clipcore/**", "book/params.yml"):
        assert part in cache["with"]["key"]
    upload = next(s for s in build if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["steps"][0]["uses"].startswith("actions/deploy-pages")
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"
