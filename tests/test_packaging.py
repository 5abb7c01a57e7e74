"""environment.yml and pyproject.toml list the same packages, the lock file pins them all
within pyproject's ranges and is what `make` installs; the README keeps its promises."""

import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from clipcore.book import ROOT

LOCK = ROOT / "requirements-lock.txt"

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


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return [Requirement(s) for s in specs]


def _lock() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert "==" in line and not line.startswith("-"), f"not an exact pin: {line!r}"
            name, version = line.split("==")
            pins[_name(name)] = version.strip()
    return pins


def test_lock_pins_every_dependency_within_pyproject_ranges():
    pins = _lock()
    for req in _pyproject_requirements():
        name = _name(req.name)
        assert name in pins, f"{name} is not in {LOCK.name}"
        assert req.specifier.contains(Version(pins[name]), prereleases=True), (
            f"{LOCK.name} pins {name}=={pins[name]}, outside pyproject's {req.specifier}"
        )


def test_lock_pins_the_cpu_wheel_of_torch():
    version = Version(_lock()["torch"])
    assert version.local == "cpu", f"torch=={version}: the lock must pin the CPU wheel (a +cpu version)"


def test_make_installs_from_the_lock_by_default(tmp_path):
    def plan(*args):
        cmd = ["make", "-n", "-B", "venv", f"VENV={tmp_path / 'venv'}", *args]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60).stdout

    default = plan()
    torch_pin = next(line for line in LOCK.read_text().splitlines() if line.startswith("torch=="))
    assert f'pip install -q  "{torch_pin}"' in default, default
    assert f"grep -v '^torch==' {LOCK.name}" in default and "pip install -q -r" in default
    assert "pip install -q --no-deps -e ." in default
    gpu = plan("TORCH_SPEC=torch")
    assert 'pip install -q  "torch"' in gpu and "pip install -q -r" in gpu, "TORCH_SPEC keeps the lock"
    assert 'pip install -q -e ".[book,test]"' in plan("LOCK="), "LOCK= installs the ranges"


def test_installed_environment_matches_the_lock():
    marker = Path(sys.prefix) / ".installed"
    how = marker.read_text().split() if marker.exists() else []
    if how[:1] != ["lock"]:
        pytest.skip(
            f"this environment was not installed from the lock ({marker}: {' '.join(how) or 'absent'})"
        )
    torch_spec = how[how.index("torch") + 1] if "torch" in how else ""
    wrong = []
    for name, version in _lock().items():
        if name == "torch" and torch_spec != f"torch=={version}":
            continue  # TORCH_SPEC chose another build (a GPU machine)
        try:
            have = md.version(name)
        except md.PackageNotFoundError:
            wrong.append(f"{name} (missing)")
            continue
        if Version(have) != Version(version):
            wrong.append(f"{name} {have} (lock: {version})")
    assert not wrong, f"installed versions differ from {LOCK.name}: {wrong}"
