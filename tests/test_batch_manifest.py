"""Batch manifests (JSON and TSV): what they mean, and malformed ones fail as InputError with an offset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pylinkjl.batch import MAX_MANIFEST_BYTES, BatchItem, read_manifest
from pylinkjl.errors import InputError


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_json_manifest(tmp_path: Path) -> None:
    doc = [
        {"input": "a/jl_Ab12", "output": "out/A.so"},
        {"input": ["x.o", "/abs/y.o"], "target": "windows-x86_64", "julia_version": "1.10"},
        {"input": "c.a", "output": None},
        {"input": "d.a", "ji": "caches/D.ji"},
    ]
    items = read_manifest(_write(tmp_path, "m.json", json.dumps(doc)))
    assert items == [
        BatchItem(inputs=(tmp_path / "a/jl_Ab12",), output=tmp_path / "out/A.so"),
        BatchItem(inputs=(tmp_path / "x.o", Path("/abs/y.o")), target="windows-x86_64", julia_version="1.10"),
        BatchItem(inputs=(tmp_path / "c.a",)),
        BatchItem(inputs=(tmp_path / "d.a",), ji=tmp_path / "caches/D.ji"),
    ]


def test_tsv_manifest(tmp_path: Path) -> None:
    text = ("# input\toutput\n"
            "a.a\tout/a.so\n"
            "\n"
            "/abs/b.a\t\tmacos-arm64\r\n"
            "c.a\t/abs/c.dll\twindows-i686\t1.9.4\n"
            "d.a\n"
            "e.a\te.so\t\t\te.ji\n")
    items = read_manifest(_write(tmp_path, "m.tsv", text))
    assert items == [
        BatchItem(inputs=(tmp_path / "a.a",), output=tmp_path / "out/a.so"),
        BatchItem(inputs=(Path("/abs/b.a"),), target="macos-arm64"),
        BatchItem(inputs=(tmp_path / "c.a",), output=Path("/abs/c.dll"), target="windows-i686", julia_version="1.9.4"),
        BatchItem(inputs=(tmp_path / "d.a",)),
        BatchItem(inputs=(tmp_path / "e.a",), output=tmp_path / "e.so", ji=tmp_path / "e.ji"),
    ]
    assert read_manifest(_write(tmp_path, "empty.tsv", "")) == []


@pytest.mark.parametrize(("content", "problem", "offset"), [
    ("[1, 2", "not valid JSON", 5),
    ('{"input": "a"}', "is a list of", 0),
    ('[{"input": "a"}, 7]', "entry 1: is not an object", 17),
    ('[{"input": "a"},\n {"inputs": "b"}]', "unknown key(s) 'inputs'", 18),
    ('[{"input": []}]', '"input" must be a path', 1),
    ('[{"input": "a", "output": 3}]', '"output" must be a non-empty string', 1),
    ("a.a\tb.so\nc.a\td\te\tf\tg\th\n", "line 2: 6 tab-separated fields", 9),
    ("a.a\n\tb.so\n", "line 2: no input path", 4),
    (b"a.a\t\xff\n", "not UTF-8", 4),
    ('["\u00e9\u00e9", 1]', "entry 0: is not an object", 1),
])
def test_malformed_manifests(tmp_path: Path, content: str | bytes, problem: str, offset: int) -> None:
    path = _write(tmp_path, "m", content)
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert info.value.path == path
    assert problem in info.value.message
    assert info.value.offset == offset


def test_missing_and_oversized_manifests(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open the manifest"):
        read_manifest(tmp_path / "nope.json")
    big = tmp_path / "big.tsv"
    with open(big, "wb") as f:
        f.truncate(MAX_MANIFEST_BYTES + 1)
    with pytest.raises(InputError, match="more than the 64 MiB"):
        read_manifest(big)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["input", "output", "target", "julia_version", "x"]), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.lists(JSONISH, max_size=4), cut=st.integers(min_value=0, max_value=200))
def test_fuzz_json_manifest(tmp_path: Path, doc: list[object], cut: int) -> None:
    text = json.dumps(doc)
    for content in (text, text[:cut]):
        path = _write(tmp_path, "fuzz.json", content)
        try:
            items = read_manifest(path)
        except InputError as err:
            assert err.path == path
            assert err.offset is None or 0 <= err.offset <= len(content.encode("utf-8"))
        else:
            assert all(isinstance(i, BatchItem) and i.inputs for i in items)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_fuzz_any_bytes(tmp_path: Path, data: bytes) -> None:
    path = _write(tmp_path, "fuzz", data)
    try:
        items = read_manifest(path)
    except InputError as err:
        assert err.path == path
        assert err.offset is None or 0 <= err.offset <= len(data)
    else:
        assert all(isinstance(i, BatchItem) and i.inputs for i in items)
