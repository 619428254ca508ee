"""bench.results_io: results files are written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.results_io import write_results


def test_writes_json_and_creates_folders(tmp_path: Path) -> None:
    path = tmp_path / "new" / "r.json"
    write_results(path, {"score": 0.5, "name": "café"})
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"score": 0.5, "name": "café"}
    assert text.endswith("}\n") and "café" in text  # UTF-8 kept, not \u-escaped
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary file left


def test_failed_write_keeps_previous_results(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_results(path, {"round": 1})
    with pytest.raises(TypeError):
        write_results(path, {"round": object()})  # not serializable: fails before writing
    assert json.loads(path.read_text()) == {"round": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
