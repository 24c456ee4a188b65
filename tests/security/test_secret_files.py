"""The one writer of secret files (gateway.security.secrets.write_secret_file)."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from gateway.security.secrets import write_secret_file


def test_creates_with_mode_0600_and_the_exact_text(tmp_path):
    path = tmp_path / "sub" / "key.b64"
    assert write_secret_file(path, "secret\n", replace=False) is True
    assert path.read_text() == "secret\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_create_only_never_overwrites(tmp_path):
    path = tmp_path / "key.b64"
    write_secret_file(path, "first\n", replace=False)
    assert write_secret_file(path, "second\n", replace=False) is False
    assert path.read_text() == "first\n"


def test_replace_overwrites_and_keeps_0600(tmp_path):
    path = tmp_path / "key.b64"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    assert write_secret_file(path, "new\n", replace=True) is True
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_leaves_no_temporary_file(tmp_path):
    write_secret_file(tmp_path / "a", "x", replace=False)
    write_secret_file(tmp_path / "a", "y", replace=False)
    write_secret_file(tmp_path / "a", "z", replace=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path, monkeypatch):
    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        write_secret_file(tmp_path / "key", "x", replace=False)
    assert list(tmp_path.iterdir()) == []


def test_racing_creators_agree_on_one_winner(tmp_path):
    path = tmp_path / "key.b64"
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def create(i: int) -> None:
        barrier.wait()
        results.append(write_secret_file(path, f"value-{i}\n", replace=False))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert path.read_text().startswith("value-")
