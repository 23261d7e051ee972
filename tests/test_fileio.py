"""Atomic writes of files and folders (tas_bench.runtime.fileio)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tas_bench.runtime.fileio import TMP_MARK, atomic_dir, atomic_path, host_tag, sweep_orphans


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    final = tmp_path / "run"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "new.txt").write_text("new")
        assert TMP_MARK in tmp.name and host_tag() in tmp.name and str(os.getpid()) in tmp.name
        raise RuntimeError("writer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temp folder left
    assert [p.name for p in final.iterdir()] == ["old.txt"]
    with atomic_dir(final) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (final / "old.txt").exists()  # readers see the old folder until the rename
    assert [p.name for p in final.iterdir()] == ["new.txt"]


def test_atomic_path_leaves_old_file_on_failure(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_text("old")
    with pytest.raises(ValueError), atomic_path(f) as tmp:
        tmp.write_text("half")
        raise ValueError
    assert f.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_host_tag_has_no_separators() -> None:
    assert host_tag() and "." not in host_tag() and "/" not in host_tag()


def test_killed_writers_folder_is_swept(tmp_path: Path) -> None:
    dead = tmp_path / f".run{TMP_MARK}{host_tag()}.999999999.abcd"
    dead.mkdir()
    (dead / "x").write_text("x")
    sweep_orphans(tmp_path)
    assert not dead.exists()
