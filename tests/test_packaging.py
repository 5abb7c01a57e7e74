"""environment.yml and pyproject.toml list the same packages; the README keeps its promises."""

import re
import tomllib

import yaml

from clipcore.book import ROOT

CONDA_NAMES = {"pytorch": "torch"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(s) for s in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_name(s) for s in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            have |= {_name(s) for s in dep["pip"] if not s.startswith("-e")}
        else:
            have.add(CONDA_NAMES.get(_name(dep), _name(dep)))
    have -= {"python", "pip"}
    assert wanted == have, f"only in pyproject: {wanted - have}; only in environment.yml: {have - wanted}"


def test_readme_first_two_commands():
    text = (ROOT / "README.md").read_text()
    commands = re.findall(r"^\s*(make \w+)", text, flags=re.M)
    assert commands[:2] == ["make book", "make test"]
