"""Fuzz the manifest/JSON readers (issue 8): random bytes and mutated valid files give only
:class:`TasBenchError` (or a problem list), never another exception, never a hang.

Inputs are bounded (a few KB, plus a few fixed hostile shapes: 200k-deep nesting, 5000-digit
integers), examples are few and there is no deadline, so the test takes seconds and cannot
depend on timing. What loads must also write back and reload to the same clips.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from datagen import make_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tas_bench.data.manifest import check_manifest, load_dataset, write_manifest
from tas_bench.data.validate import validate_dataset
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import read_json_object

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_ROOT = Path(tempfile.mkdtemp(prefix="tas-fuzz-readers-"))
_DATA = _ROOT / "data"
_RECS = make_dataset(_DATA, n=2, seconds=0.05)
VALID_MANIFEST = (_DATA / "manifest.jsonl").read_bytes()
VALID_INFO = json.dumps({"name": "fuzz", "counts": {"test": 2}, "config": {"sample_rate": 16000,
                                                                           "rooms": [{"rt60": 0.3}]}},
                        indent=2).encode()


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Any:
    yield
    shutil.rmtree(_ROOT, ignore_errors=True)


# ---- strategies --------------------------------------------------------------------------------

HOSTILE_SNIPPETS = [
    b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"9" * 5000, b"-" + b"1" * 1001,
    b"[" * 200_000, b"]" * 1000, b'{"a":' * 5000, b"[" * 99 + b"]" * 99, b"[" * 101 + b"]" * 101,
    b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\x00", b'"\\ud800"', b'"\\udc00\\ud800"',
    b'"\\u0000"', b"\r", b"\n", b"\r\n", b"{}", b"[]", b"null", b"true", b'""', b"-0", b"0.0",
    b"1e308", b"1e-400", b'"../../etc/passwd"', b'"/abs.wav"', b'"audio"', b'"."', b'"audio/test"',
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_bytes(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with a few byte flips, insertions (random or hostile snippets) and deletions."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "snippet", "delete", "truncate"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            pos = min(pos, len(data) - 1)
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "snippet":
            data[pos:pos] = draw(st.sampled_from(HOSTILE_SNIPPETS))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 32))]
        else:
            del data[pos:]
    return bytes(data)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside a JSON object (dict keys and list indices)."""
    out = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for k, v in items:
        out.append((*prefix, k))
        out.extend(_paths(v, (*prefix, k)))
    return out


@st.composite
def wrong_typed_manifest(draw: st.DrawFn) -> bytes:
    """The valid manifest with a few fields (at any depth) set to random JSON values or
    hostile literals, or deleted."""
    recs = [json.loads(line) for line in VALID_MANIFEST.splitlines()]
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(recs) - 1))
        path = draw(st.sampled_from(_paths(recs[i])))
        parent = recs[i]
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["value", "literal", "delete"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values) if action == "value" else \
                f"@@{draw(st.sampled_from(HOSTILE_SNIPPETS[:12])).decode()}@@"
    text = "\n".join(json.dumps(r, allow_nan=True) for r in recs) + "\n"
    # put the raw literals in place of their placeholder strings
    for snippet in HOSTILE_SNIPPETS[:12]:
        text = text.replace(f'"@@{snippet.decode()}@@"', snippet.decode())
    return text.encode()


manifests = st.one_of(st.binary(max_size=2000), mutated_bytes(VALID_MANIFEST), wrong_typed_manifest())
infos = st.one_of(st.binary(max_size=500), mutated_bytes(VALID_INFO), json_values.map(
    lambda v: json.dumps(v).encode()))


# ---- properties --------------------------------------------------------------------------------

def _dataset_with(manifest: bytes, info: bytes | None) -> Path:
    (_DATA / "manifest.jsonl").write_bytes(manifest)
    if info is None:
        (_DATA / "dataset.json").unlink(missing_ok=True)
    else:
        (_DATA / "dataset.json").write_bytes(info)
    return _DATA


def _check_loaded_round_trip(root: Path) -> None:
    """What load_dataset accepts can be written back as strict JSON and reloads the same."""
    try:
        ds = load_dataset(root)
    except TasBenchError as exc:
        assert "\n" not in str(exc)
        return
    json.dumps(ds.info, allow_nan=False).encode("utf-8")
    again = _ROOT / "again"
    again.mkdir(exist_ok=True)
    write_manifest(again, ds.clips)
    assert [c.to_dict() for c in load_dataset(again).clips] == [c.to_dict() for c in ds.clips]


@FUZZ
@given(manifest=manifests, info=st.none() | infos)
def test_manifest_readers_only_raise_tas_bench_errors(manifest: bytes, info: bytes | None) -> None:
    root = _dataset_with(manifest, info)
    clips, problems = check_manifest(root)
    assert all("\n" not in str(p) for p in problems)
    n, problems = validate_dataset(root, check_audio=True)
    assert n == len(clips)
    assert all("\n" not in str(p) and len(str(p)) < 2000 for p in problems)
    _check_loaded_round_trip(root)


@FUZZ
@given(content=infos | manifests)
def test_read_json_object_only_raises_tas_bench_errors(content: bytes) -> None:
    path = _ROOT / "x.json"
    path.write_bytes(content)
    try:
        doc = read_json_object(path)
    except TasBenchError as exc:
        assert "x.json" in str(exc) and "\n" not in str(exc)
        return
    assert isinstance(doc, dict)
    json.dumps(doc, allow_nan=False).encode("utf-8")


def test_fuzz_inputs_include_the_hostile_shapes() -> None:
    """The mutations do reach the parser with the shapes issue 8 lists (sanity check)."""
    (_DATA / "manifest.jsonl").write_bytes(b"[" * 200_000 + b"\n" + b"9" * 5000 + b"\n\xff\n")
    _, problems = check_manifest(_DATA)
    assert [p.line for p in problems] == [1, 2, 3]
    (_DATA / "manifest.jsonl").write_bytes(VALID_MANIFEST)
    assert check_manifest(_DATA)[1] == []
