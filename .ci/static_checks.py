#!/usr/bin/env python3
"""Static checks over vidchat as it installs: the layer contract (import-linter) and mypy.

    python3 .ci/static_checks.py            # both
    python3 .ci/static_checks.py imports    # lint-imports: the contracts in pyproject.toml
    python3 .ci/static_checks.py types      # mypy with the pydantic plugin ([tool.mypy])
    python3 .ci/static_checks.py types -- orchestrator/kernel/video.py   # mypy on some files
    python3 .ci/static_checks.py view --view DIR           # only build the view (tests doctor it)
    python3 .ci/static_checks.py imports --view DIR --reuse-view   # check a view as it is

Why a view: the repository's folders are not laid out like the package. pyproject's package-dir
maps `orchestrator/` to `vidchat` and `perceivers/`, `embed_model/`, `prompts/`, `profiles/` to
`vidchat.perceivers`, ...; the editable install serves that mapping through an import hook, and
neither tool follows import hooks. Pointed at the folders themselves, mypy names the modules
`orchestrator.kernel.record` and cannot resolve a single `vidchat.…` import, and import-linter's
graph of `vidchat` stops at `orchestrator/` (no perceivers, no embed model). So this script builds,
from the same package-dir table, a tree of symbolic links shaped like the installed package
(`build/package-view/vidchat/…`, links only, rebuilt each run, so it cannot go stale) and runs
both tools on it. mypy's messages are mapped back to repository paths.

Exit status: non-zero when any check fails (or a tool is missing), zero otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VIEW = REPO / "build" / "package-view"


def package_dirs(pyproject: Path = REPO / "pyproject.toml") -> tuple[str, dict[str, Path]]:
    """The root package and every mapped sub-package -> its folder, from pyproject's package-dir.

    Only a root and its direct children are mapped here (that is the whole layout); anything
    deeper is refused rather than guessed at.
    """
    table = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-dir"]
    roots = [name for name in table if "." not in name]
    if len(roots) != 1:
        raise SystemExit(f"expected exactly one root package in package-dir, found {roots}")
    root = roots[0]
    mapping: dict[str, Path] = {}
    for name, folder in table.items():
        parts = name.split(".")
        if parts[0] != root or len(parts) > 2:
            raise SystemExit(
                f"package-dir entry {name!r}: expected {root!r} or {root}.<name>; "
                "teach .ci/static_checks.py deeper mappings before adding one"
            )
        mapping[name] = REPO / folder
    return root, mapping


def build_view(dest: Path = DEFAULT_VIEW) -> Path:
    """Build (afresh) a link tree shaped like the installed package under `dest`; return the
    package folder (`dest/<root>`)."""
    root, mapping = package_dirs()
    if dest.exists():
        shutil.rmtree(dest)
    pkg = dest / root
    pkg.mkdir(parents=True)
    children = {name.split(".")[1]: folder for name, folder in mapping.items() if "." in name}
    for entry in sorted(mapping[root].iterdir()):
        if entry.name == "__pycache__":
            continue
        if entry.name in children:
            raise SystemExit(
                f"{entry} clashes with the package-dir mapping of {root}.{entry.name} "
                f"-> {children[entry.name]}"
            )
        (pkg / entry.name).symlink_to(entry)
    for child, folder in sorted(children.items()):
        (pkg / child).symlink_to(folder, target_is_directory=True)
    return pkg


def _repo_path_rewriter(pkg: Path) -> Callable[[str], str]:
    """A function that maps view paths in a tool's output back to repository paths."""
    _, mapping = package_dirs()
    prefixes: list[tuple[str, str]] = []
    # Sub-packages first: their view prefix is longer than the root's.
    for name, folder in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
        view = pkg.parent.joinpath(*name.split("."))
        real = os.path.relpath(folder, REPO)
        for shown in (str(view), os.path.relpath(view, REPO)):
            prefixes.append((shown + os.sep, real + os.sep))
    pattern = re.compile("|".join(re.escape(shown) for shown, _ in prefixes))
    table = dict(prefixes)

    def rewrite(text: str) -> str:
        return pattern.sub(lambda m: table[m.group(0)], text)

    return rewrite


def _missing(module: str, what: str) -> bool:
    """True (and one line on stderr) when the tool `module` is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is not None:
        return False
    print(f"static_checks: {what} is not installed; it comes with the dev extra "
          "(pip install -e '.[dev]', or bash .ci/setup)", file=sys.stderr)  # fmt: skip
    return True


def run_imports(pkg: Path, extra: list[str]) -> int:
    """import-linter over the view: every contract in pyproject.toml's [tool.importlinter]."""
    if _missing("importlinter", "import-linter"):
        return 2
    # The view goes first on the path, so it (not the editable install's import hook, which sits
    # after the normal path finder) is where grimp finds the `vidchat` folder to scan.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        str(pkg.parent), os.environ.get("PYTHONPATH", "")])))
    cmd = [
        sys.executable, "-c",
        "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())",
        "--config", str(REPO / "pyproject.toml"), "--no-cache", *extra,
    ]
    return subprocess.call(cmd, cwd=REPO, env=env)


def run_types(pkg: Path, extra: list[str]) -> int:
    """mypy over the view with pyproject.toml's [tool.mypy] settings; paths shown as the repo's."""
    if _missing("mypy", "mypy"):
        return 2
    targets = [a for a in extra if not a.startswith("-")]
    options = [a for a in extra if a.startswith("-")]
    # Repository paths given on the command line are checked through their place in the view.
    _, mapping = package_dirs()
    view_targets = []
    for target in targets:
        real = (REPO / target).resolve()
        for name, folder in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
            if real == folder or folder in real.parents:
                view = pkg.parent.joinpath(*name.split("."), real.relative_to(folder))
                view_targets.append(str(view))
                break
        else:
            view_targets.append(target)
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), *options,
           *(view_targets or [str(pkg)])]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    rewrite = _repo_path_rewriter(pkg)
    sys.stdout.write(rewrite(proc.stdout))
    sys.stderr.write(rewrite(proc.stderr))
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    """Run the requested checks; the exit status is the worst of them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("check", nargs="?", choices=["all", "imports", "types", "view"],
                        default="all")  # fmt: skip
    parser.add_argument("--view", type=Path, default=DEFAULT_VIEW,
                        help="where to build the package view (default: build/package-view)")
    parser.add_argument("--reuse-view", action="store_true",
                        help="check the view already at --view as it is, without rebuilding it")
    parser.add_argument("extra", nargs="*", help="after --: passed on to the tool")
    args = parser.parse_args(argv)
    view = args.view.resolve()
    if args.reuse_view:
        pkg = view / package_dirs()[0]
        if not pkg.is_dir():
            raise SystemExit(f"--reuse-view: expected a package view at {pkg}, found nothing")
    else:
        pkg = build_view(view)
    if args.check == "view":
        print(pkg)
        return 0
    status = 0
    if args.check in ("imports", "all"):
        status |= run_imports(pkg, args.extra)
    if args.check in ("types", "all"):
        status |= run_types(pkg, args.extra)
    return status


if __name__ == "__main__":
    sys.exit(main())
