"""Dependencies are locked with hashes, and `make` installs from the locks: every machine runs
the same versions of the same files."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
CHECKOV_LOCK = ROOT / "requirements-checkov.lock"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*\\?$")
_HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}\s*\\?$")


def parse_lock(text: str) -> dict[str, tuple[Version, int]]:
    """name → (pinned version, number of hashes); fails on anything that is not a hashed pin."""
    pins: dict[str, tuple[Version, int]] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pin = _PIN.match(line)
        if pin:
            current = canonicalize_name(pin[1])
            assert current not in pins, f"line {number}: {current} pinned twice"
            pins[current] = (Version(pin[2]), 0)
        elif _HASH.match(line) and current is not None:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
        else:
            raise AssertionError(f"line {number} is neither a pin nor its hash: {raw!r}")
    return pins


def _pyproject() -> dict[str, list[str]]:
    """ "runtime" and each extra → its requirements."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {"runtime": project["dependencies"], **project["optional-dependencies"]}


@pytest.fixture(scope="module")
def locks() -> dict[str, dict[str, tuple[Version, int]]]:
    return {
        "runtime": parse_lock(RUNTIME_LOCK.read_text()),
        "dev": parse_lock(DEV_LOCK.read_text()),
    }


def test_the_parser_refuses_unhashed_and_unpinned_lines() -> None:
    good = "a==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    assert parse_lock(good) == {"a": (Version("1.0"), 1)}
    for bad in ("a>=1.0\n", "a\n", "-e .\n", "a==1.0 \\\n    --hash=md5:abc\n"):
        with pytest.raises(AssertionError):
            parse_lock(bad)


def test_every_locked_requirement_is_pinned_with_hashes(
    locks: dict[str, dict[str, tuple[Version, int]]],
) -> None:
    for name, pins in locks.items():
        assert len(pins) > 20, name
        unhashed = sorted(p for p, (_, hashes) in pins.items() if hashes == 0)
        assert unhashed == [], f"{name} lock: no --hash for {unhashed}"


def test_every_dependency_of_pyproject_is_pinned_in_its_lock(
    locks: dict[str, dict[str, tuple[Version, int]]],
) -> None:
    groups = _pyproject()
    # Runtime in both locks, every extra in the full one (an extra added later must be locked)
    wanted = {
        "runtime": groups["runtime"],
        "dev": [r for requirements in groups.values() for r in requirements],
    }
    for lock, requirements in wanted.items():
        for text in requirements:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            assert name in locks[lock], f"{requirement.name} is not in the {lock} lock: make lock"
            version, _ = locks[lock][name]
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{lock} lock pins {name}=={version}, pyproject.toml asks {requirement}: make lock"
            )


def test_both_locks_pin_the_same_versions(
    locks: dict[str, dict[str, tuple[Version, int]]],
) -> None:
    runtime, dev = locks["runtime"], locks["dev"]
    assert set(runtime) <= set(dev)
    assert {n: runtime[n][0] for n in runtime} == {n: dev[n][0] for n in runtime}


def test_make_installs_from_the_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+)\s*:?=\s*(\S+)\s*$", makefile, re.M))
    assert variables["LOCK"] == RUNTIME_LOCK.name
    assert variables["DEV_LOCK"] == DEV_LOCK.name

    def recipe(target: str) -> tuple[str, list[str]]:
        match = re.search(rf"^{re.escape(target)}:(.*)\n((?:\t.*\n)+)", makefile, re.M)
        assert match, target
        return match[1], [line.strip() for line in match[2].splitlines()]

    # The stamps depend on the locks (a new lock reinstalls), and install them with hashes
    prerequisites, lines = recipe("$(VENV)/.base")
    assert "$(LOCK)" in prerequisites.split()
    assert "$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)" in lines
    # …then the project itself, with nothing unlocked coming along: built by the locked
    # setuptools (chalice requires it today; were that to change, lock it explicitly)
    (project,) = [line for line in lines if line.endswith(" -e .")]
    assert "--no-deps" in project and "--no-build-isolation" in project
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    runtime = parse_lock(RUNTIME_LOCK.read_text())
    for text in build:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in runtime and requirement.specifier.contains(runtime[name][0]), text
    prerequisites, lines = recipe("$(VENV)/.dev")
    assert "$(DEV_LOCK)" in prerequisites.split()
    assert "$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)" in lines
    # No install in the Makefile goes around the locks
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert all("--require-hashes" in line or "--no-deps" in line for line in installs), installs
    # checkov (tests/infra/test_checkov.py) has a venv and a lock of its own: its pins clash
    # with Reel's (boto3, packaging, networkx)
    assert variables["CHECKOV_LOCK"] == CHECKOV_LOCK.name
    prerequisites, lines = recipe("$(CHECKOV_VENV)/.installed")
    assert "$(CHECKOV_LOCK)" in prerequisites.split()
    assert (
        "$(CHECKOV_VENV)/bin/python -m pip install --quiet --require-hashes -r $(CHECKOV_LOCK)"
        in lines
    )
    # `make lock` regenerates all three, with hashes, in one command
    _, lines = recipe("lock")
    assert [line.rsplit(" ", 1)[-1] for line in lines] == [
        "$(DEV_LOCK)",
        "$(LOCK)",
        "$(CHECKOV_LOCK)",
    ]
    assert all(line.startswith("$(BIN)/uv pip compile ") for line in lines)
    assert all("$(LOCK_ARGS)" in line for line in lines)
    lock_args = re.search(r"^LOCK_ARGS\s*=((?:.*\\\n)*.*)$", makefile, re.M)
    assert lock_args and "--generate-hashes" in lock_args[1]
    # The lock generator is itself locked (a dev dependency)
    assert any(Requirement(r).name == "uv" for r in _pyproject()["dev"])


def test_the_locks_say_how_they_are_made() -> None:
    for lock in (RUNTIME_LOCK, DEV_LOCK, CHECKOV_LOCK):
        assert "make lock" in lock.read_text().split("\n", 3)[1], lock.name
