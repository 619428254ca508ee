"""The packaging, proved on a real wheel: built from a copy of the repository without build
isolation, installed with --no-deps into a fresh virtual environment that borrows the machine's
heavy dependencies (--system-site-packages), and used from a folder outside the repository.

Users get one package, `vidchat`, with its data (prompts, profiles, the web app, py.typed) and the
`vidchat` command; none of the repository's folder names (`orchestrator`, `perceivers`, ...) and
neither `bench` nor `tests` become importable.

Which vidchat is imported: the machine's global site-packages, which the venv sees, may hold an
editable install of vidchat (this machine's points at another checkout). setuptools serves an
editable package-dir install through a finder it *appends* to `sys.meta_path`, after Python's
normal path finder; the venv's own site-packages comes before the global one on `sys.path`, so
the path finder finds the wheel's `vidchat` first and the editable finder is never asked. The
tests do not rely on that reasoning: they check `vidchat.__file__` (and its sub-packages') lies
inside the new venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# Build outputs and caches are not part of a source tree (and .mypy_cache is hundreds of MB).
_NOT_SOURCE = (".git", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache",
               ".pytest_cache", ".ruff_cache", ".import_linter_cache")  # fmt: skip
OLD_TOP_LEVEL = ("orchestrator", "perceivers", "embed_model", "prompts", "profiles", "bench",
                 "tests")  # fmt: skip


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    python: Path
    elsewhere: Path  # a working directory outside the repository

    def run(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a command from `elsewhere` with no PYTHONPATH leaking the repository in."""
        leaks = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSAFEPATH")
        env = {k: v for k, v in os.environ.items() if k not in leaks}
        proc = subprocess.run(
            [str(a) for a in args], cwd=self.elsewhere, env=env, capture_output=True,
            text=True, timeout=timeout,
        )  # fmt: skip
        assert proc.returncode == 0, (
            f"{' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
        return proc


def _package_dirs() -> dict[str, Path]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the same parser, from PyPI (mypy brings it)
        import tomli as tomllib

    table = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: REPO / folder for name, folder in table["package-dir"].items()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*_NOT_SOURCE), symlinks=True)
    venv = root / "venv"
    # --without-pip: the machine's pip (seen through the system site-packages) installs into the
    # venv just as well, and a venv-local setuptools would shadow the machine's for the build.
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True, timeout=120,
    )  # fmt: skip
    python = venv / "bin" / "python"
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    inst = Installed(wheel=root, venv=venv, python=python, elsewhere=elsewhere)
    # Without isolation the build uses the machine's setuptools: it must build wheels by itself
    # (bdist_wheel is built in from setuptools 70.1; before that it came from `wheel`).
    tools = json.loads(inst.run(python, "-c", (
        "import importlib.util, json, setuptools; print(json.dumps([setuptools.__version__, "
        "importlib.util.find_spec('wheel') is not None]))"
    )).stdout)  # fmt: skip
    major_minor = tuple(int(p) for p in tools[0].split(".")[:2])
    if major_minor < (70, 1) and not tools[1]:
        pytest.fail(
            f"setuptools {tools[0]} without the `wheel` package cannot build a wheel without "
            "isolation; expected setuptools>=70.1 (the dev extra asks for it: run .ci/setup)"
        )
    dist = root / "dist"
    inst.run(python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
             "-q", "-w", dist, src)  # fmt: skip
    wheels = sorted(dist.glob("vidchat-*.whl"))
    assert len(wheels) == 1, f"expected one vidchat wheel in {dist}, found {wheels}"
    # --ignore-installed: the machine's own (editable) vidchat is outside this venv; install
    # beside it instead of deciding that the requirement is already met.
    inst.run(python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
             "-q", wheels[0])  # fmt: skip
    return Installed(wheel=wheels[0], venv=venv, python=python, elsewhere=elsewhere)


def _names(installed: Installed) -> list[str]:
    with zipfile.ZipFile(installed.wheel) as z:
        return z.namelist()


def test_the_wheel_holds_only_the_vidchat_package(installed: Installed) -> None:
    tops = {n.split("/", 1)[0] for n in _names(installed)}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert len(dist_info) == 1 and next(iter(dist_info)).startswith("vidchat-"), tops
    assert tops - dist_info == {"vidchat"}, f"top-level entries besides vidchat: {tops}"


def test_the_wheel_ships_every_module_and_data_file(installed: Installed) -> None:
    names = set(_names(installed))
    expected: set[str] = set()
    for package, folder in _package_dirs().items():
        prefix = package.replace(".", "/")
        for f in folder.rglob("*.py"):
            if "__pycache__" not in f.parts:
                expected.add(f"{prefix}/{f.relative_to(folder).as_posix()}")
    data = {
        "vidchat/py.typed": REPO / "orchestrator" / "py.typed",
        **{f"vidchat/prompts/{p.name}": p for p in (REPO / "prompts").glob("*.yaml")},
        **{f"vidchat/profiles/{p.name}": p for p in (REPO / "profiles").glob("*.yaml")},
        **{f"vidchat/apps/web/{p.name}": p for p in (REPO / "orchestrator/apps/web").iterdir()},
    }
    assert len(data) > 8, data  # the globs found the files (py.typed, 5 prompts, 2 profiles, web)
    expected |= set(data)
    missing = sorted(expected - names)
    assert not missing, f"in the repository but not in the wheel: {missing}"
    with zipfile.ZipFile(installed.wheel) as z:
        for name, source in data.items():
            assert z.read(name) == source.read_bytes(), name


def test_import_vidchat_comes_from_the_venv_and_old_names_do_not_import(
    installed: Installed,
) -> None:
    # -I: no PYTHONPATH, no user site, no script folder or working directory on sys.path.
    probe = """
import importlib, json, sys
out = {}
for name in ("vidchat", "vidchat.perceivers", "vidchat.embed_model", "vidchat.prompts",
             "vidchat.profiles", "vidchat.cli.main"):
    out[name] = importlib.import_module(name).__file__
old = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        old[name] = "imported"
    except ModuleNotFoundError as e:
        old[name] = "missing" if e.name == name else f"broken: {e}"
import vidchat
out["old"] = old
out["profile"] = vidchat.load_profile("offline").name
from vidchat.prompts import load_prompt
out["prompt"] = sorted(load_prompt("chat").parts)
print(json.dumps(out))
"""
    got = json.loads(installed.run(installed.python, "-I", "-c", probe, *OLD_TOP_LEVEL).stdout)
    site = installed.venv.resolve()
    for name in ("vidchat", "vidchat.perceivers", "vidchat.embed_model", "vidchat.prompts",
                 "vidchat.profiles", "vidchat.cli.main"):  # fmt: skip
        where = Path(got[name]).resolve()
        assert site in where.parents, f"{name} imported from {where}, not from the venv {site}"
        assert REPO not in where.parents, f"{name} imported from the repository: {where}"
    assert got["old"] == {name: "missing" for name in OLD_TOP_LEVEL}, got["old"]
    assert got["profile"] == "offline"
    assert got["prompt"], "the shipped chat prompt has no parts"


def test_the_vidchat_command_runs_from_the_venv(installed: Installed) -> None:
    script = installed.venv / "bin" / "vidchat"
    assert script.is_file(), f"no console script at {script}"
    head = script.read_text()[:500]
    assert str(installed.python) in head, f"the script does not run the venv's python:\n{head}"
    helped = installed.run(script, "--help").stdout
    for command in ("textualize", "chat", "ask", "profiles"):
        assert command in helped, f"`vidchat --help` does not list {command!r}:\n{helped}"
    listed = installed.run(script, "profiles").stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert {"offline", "full"} <= names, listed


def test_the_installed_package_textualizes_a_clip(installed: Installed) -> None:
    """Beyond imports: the installed package runs its pipeline on a generated clip (a toy
    perceiver, so no model is needed) and renders the record with the shipped templates."""
    work = installed.elsewhere / "clip"
    work.mkdir()
    probe = """
import json, sys
from pathlib import Path
import vidchat
from vidchat.testing import toys, videos
work = Path(sys.argv[1])
vidchat.register_perceiver("brightness", toys.Brightness)
profile = work / "toy.yaml"
profile.write_text(
    "name: toy\\nperceivers:\\n  brightness: null\\n"
    "sampling: {slow_fps: 2.0, fast_fps: 2.0, fast_max_side: 64}\\n"
)
ctx = vidchat.textualize(videos.no_audio(work), profile=str(profile), cache=False)
print(json.dumps({
    "module": toys.__file__,
    "sources": sorted({e.source for e in ctx.events}),
    "events": len(ctx.events),
    "duration": ctx.video.duration,
    "text": ctx.render(budget_tokens=800).text,
}))
"""
    got = json.loads(installed.run(installed.python, "-I", "-c", probe, work).stdout)
    assert installed.venv.resolve() in Path(got["module"]).resolve().parents, got["module"]
    assert got["sources"] == ["brightness"] and got["events"] >= 3, got
    assert 1.5 <= got["duration"] <= 2.5, got["duration"]
    assert "brightness" in got["text"], got["text"]
