"""The layer contract: import-linter's contracts in pyproject.toml hold, and they do break when a
lower layer reaches up, when something imports the CLI, when the library imports bench/ or tests/,
or when a new top-level module has no layer. And no library module imports the repository's old
top-level names (`orchestrator`, `perceivers`, `embed_model`, `prompts`, `profiles`) or
`bench`/`tests`, by statement or by name (`importlib.import_module`, entry-point strings).

import-linter is run through .ci/static_checks.py, which builds a link tree shaped like the
installed package (grimp cannot follow pyproject's package-dir mapping); see that script.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKS = REPO / ".ci" / "static_checks.py"
OLD_NAMES = ("orchestrator", "perceivers", "embed_model", "prompts", "profiles", "bench", "tests")
LIBRARY_FOLDERS = ("orchestrator", "perceivers", "embed_model", "prompts", "profiles")

pytest.importorskip("importlinter", reason="import-linter comes with the dev extra")


def _checks(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKS), *map(str, args)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_layer_contracts_hold(tmp_path: Path) -> None:
    proc = _checks("imports", "--view", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 3 kept, 0 broken." in proc.stdout, proc.stdout


def test_the_contracts_break_on_a_violation(tmp_path: Path) -> None:
    """A doctored view: kernel gets a module that imports the CLI, bench and tests, and the
    package gets a top-level module no layer names. Each contract must report it."""
    built = _checks("view", "--view", tmp_path)
    assert built.returncode == 0, built.stderr
    pkg = Path(built.stdout.strip())
    kernel_link = pkg / "kernel"
    real_kernel = kernel_link.resolve()
    kernel_link.unlink()
    kernel_link.mkdir()
    for entry in real_kernel.iterdir():
        if entry.name != "__pycache__":
            (kernel_link / entry.name).symlink_to(entry)
    (kernel_link / "reach_up.py").write_text(
        "import bench.qa_bench\nimport tests.media\nfrom vidchat.cli import main\n"
    )
    (pkg / "stray.py").write_text('"""A module no layer names."""\n')
    proc = _checks("imports", "--view", tmp_path, "--reuse-view")
    out = proc.stdout
    assert proc.returncode != 0, out
    assert "Contracts: 0 kept, 3 broken." in out, out
    assert "vidchat.kernel.reach_up -> vidchat.cli.main" in out, out
    assert "vidchat.kernel.reach_up -> bench" in out and "vidchat.kernel.reach_up -> tests" in out
    assert "vidchat.stray" in out, out  # exhaustive: the stray module is named


def _library_files() -> list[Path]:
    files = [f for d in LIBRARY_FOLDERS for f in (REPO / d).rglob("*.py")]
    assert len(files) > 50, f"found only {len(files)} library modules under {LIBRARY_FOLDERS}"
    return sorted(files)


# A module path as a string: "perceivers.detect", "perceivers.detect:DetectPerceiver"; not a
# file name ("profiles.yaml") nor a plain word ("bench" is a COCO class, "profiles" a command).
_MODULE_STRING = re.compile(
    rf"^({'|'.join(OLD_NAMES)})((\.[A-Za-z_][A-Za-z0-9_]*)+(:[A-Za-z_][A-Za-z0-9_.]*)?"
    r"|:[A-Za-z_][A-Za-z0-9_.]*)$"
)
_IMPORTERS = ("import_module", "__import__")
_FILE_SUFFIX = re.compile(r"\.(ya?ml|json|j2|txt|md|py|csv)$")


def _old_name_uses(source: str, where: str) -> list[str]:
    """Each place in `source` that imports or names an old top-level package (once a line: a
    dotted string inside import_module() is both a call and a string)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename=where)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in _IMPORTERS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]  # importlib.import_module("perceivers"), __import__(...)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _MODULE_STRING.match(node.value)
            and not _FILE_SUFFIX.search(node.value)
        ):
            names = [node.value]
        for name in names:
            if name.split(".")[0].split(":")[0] in OLD_NAMES:
                found.add(f"{where}:{node.lineno}: {name}")
    return sorted(found)


def test_no_library_module_uses_the_old_top_level_names() -> None:
    found = [
        use
        for f in _library_files()
        for use in _old_name_uses(f.read_text(encoding="utf-8"), str(f.relative_to(REPO)))
    ]
    assert not found, "library modules naming old top-level packages:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import orchestrator.kernel\n", 1),
        ("from perceivers.detect import DetectPerceiver\n", 1),
        ("import importlib\nimportlib.import_module('embed_model.train')\n", 1),
        ("from importlib import import_module\nimport_module('prompts')\n", 1),
        ("__import__('orchestrator')\n", 1),
        ("BUILTIN = {'detect': 'perceivers.detect:DetectPerceiver'}\n", 1),
        ("from bench import qa_bench\nimport tests.media\n", 2),
        ("import prompts, profiles\n", 2),
        ("from . import render\nfrom vidchat.prompts import load_prompt\n", 0),
        ("NAME = 'profiles.yaml'\nSHIPPED = 'prompts'\nLABELS = ('bench', 'tests')\n", 0),
    ],
)
def test_the_scan_catches_each_kind_of_use(source: str, expected: int) -> None:
    """The scanner itself: every form of reaching an old name is caught, file names are not."""
    assert len(_old_name_uses(source, "case.py")) == expected
