"""The GPU run's payload: split into parts that each fit a call, parked, checked and unpacked
there; a part that has not arrived or arrived damaged stops it with its own exit status."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

from bench.embed_gpu import assemble, split_parts


def _payload(tmp_path: Path) -> tuple[Path, dict]:
    stage = tmp_path / "stage"
    (stage / "scenes").mkdir(parents=True)
    (stage / "data.jsonl").write_text('{"video": "scene0.mp4"}\n')
    (stage / "scenes" / "scene0.mp4").write_bytes(bytes(range(256)) * 40)  # 10 KiB
    blob = tmp_path / "payload.tar"
    with tarfile.open(blob, "w") as tar:
        tar.add(stage, arcname="vg")
    return blob, split_parts(blob, tmp_path / "gpu", part_bytes=4096)


def _park(tmp_path: Path, parts: list[int]) -> Path:
    stash = tmp_path / "stash"
    stash.mkdir(exist_ok=True)
    for k in parts:
        for f in (tmp_path / "gpu" / f"p{k}").iterdir():
            shutil.copy(f, stash / f.name)
    return stash


def test_parts_round_trip_and_every_part_fits(tmp_path: Path, capsys) -> None:
    blob, manifest = _payload(tmp_path)
    n = len(manifest["parts"])
    assert n == -(-blob.stat().st_size // 4096) and n >= 3
    assert all(p["bytes"] <= 4096 for p in manifest["parts"])
    stash = _park(tmp_path, list(range(n)))
    assert assemble(stash, tmp_path / "out") == 0
    got = tmp_path / "out" / "vg"
    assert (got / "scenes" / "scene0.mp4").read_bytes() == bytes(range(256)) * 40
    assert (got / "data.jsonl").read_text() == '{"video": "scene0.mp4"}\n'
    assert "unpacked" in capsys.readouterr().out


def test_a_missing_part_waits_and_a_damaged_one_stops(tmp_path: Path, capsys) -> None:
    _, manifest = _payload(tmp_path)
    n = len(manifest["parts"])
    stash = _park(tmp_path, list(range(n - 1)))
    assert assemble(stash, tmp_path / "out") == 3
    assert f"waiting for part-{n - 1}" in capsys.readouterr().out
    stash = _park(tmp_path, [n - 1])
    damaged = stash / "part-1"
    damaged.write_bytes(b"x" + damaged.read_bytes()[1:])
    assert assemble(stash, tmp_path / "out") == 4
    assert "part-1 is damaged" in capsys.readouterr().out
    assert not (tmp_path / "out" / "vg").exists()
