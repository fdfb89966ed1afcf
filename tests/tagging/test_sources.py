import os
from pathlib import Path

import pytest

from sigrl.errors import SigrlError
from sigrl.tagging.inputs import files as sources
from sigrl.tagging.inputs.files import discover


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def names(found, root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in found.paths]


def test_directory_recursive_case_insensitive_sorted(tmp_path):
    for name in ["b/z.JPG", "a.jpeg", "a.PNG", "c/d/e.WebP", "x.bmp", "y.TIF", "y.tiff", "g.Gif", "notes.txt", "raw.cr2", "jpg"]:
        touch(tmp_path / name)
    found = discover([tmp_path])
    assert names(found, tmp_path) == ["a.PNG", "a.jpeg", "b/z.JPG", "c/d/e.WebP", "g.Gif", "x.bmp", "y.TIF", "y.tiff"]
    assert found.problems == []


def test_list_file_relative_to_its_folder_with_comments(tmp_path):
    touch(tmp_path / "imgs" / "one.jpg")
    touch(tmp_path / "imgs" / "two.png")
    (tmp_path / "lists").mkdir()
    listing = tmp_path / "lists" / "todo.txt"
    listing.write_text("# my images\n\n../imgs/two.png\n  ../imgs/one.jpg  \n../imgs/missing.jpg\n../imgs/two.png\n")
    found = discover([listing])
    # Listed entries are kept even when missing: they get an error record downstream.
    assert [p.name for p in found.paths] == ["missing.jpg", "one.jpg", "two.png"]
    assert all(p.is_absolute() == listing.is_absolute() for p in found.paths)


def test_several_inputs_merge_and_deduplicate(tmp_path):
    a = touch(tmp_path / "d" / "a.jpg")
    touch(tmp_path / "d" / "b.jpg")
    listing = tmp_path / "l.txt"
    listing.write_text("d/a.jpg\n")
    found = discover([listing, tmp_path / "d", a])
    assert [p.name for p in found.paths] == ["a.jpg", "b.jpg"]


def test_symlink_loop_is_reported_not_fatal(tmp_path):
    touch(tmp_path / "top" / "a.jpg")
    touch(tmp_path / "top" / "sub" / "b.jpg")
    os.symlink(tmp_path / "top", tmp_path / "top" / "sub" / "back")
    os.symlink("self", tmp_path / "top" / "self")  # a link to itself: ELOOP on stat
    found = discover([tmp_path / "top"])
    assert names(found, tmp_path / "top") == ["a.jpg", "sub/b.jpg"]
    reasons = {p.name: r for p, r in found.problems}
    assert reasons["back"].startswith("symlink loop")
    assert reasons["self"] == "symlink loop"


def test_second_link_to_same_folder_is_skipped_and_reported(tmp_path):
    touch(tmp_path / "real" / "a.jpg")
    os.symlink(tmp_path / "real", tmp_path / "zlink")
    found = discover([tmp_path])
    assert names(found, tmp_path) == ["real/a.jpg"]
    assert [(p.name, r.startswith("link to a folder already walked")) for p, r in found.problems] == [("zlink", True)]


def test_broken_symlink_is_still_yielded(tmp_path):
    touch(tmp_path / "ok.jpg")
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    found = discover([tmp_path])
    assert names(found, tmp_path) == ["dangling.jpg", "ok.jpg"]


def test_unreadable_folder_is_reported(tmp_path, monkeypatch):
    touch(tmp_path / "open" / "a.jpg")
    touch(tmp_path / "locked" / "b.jpg")
    real_scandir = os.scandir

    # chmod 000 does not stop root, so the permission failure is simulated where it happens.
    def scandir(path):
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(sources.os, "scandir", scandir)
    found = discover([tmp_path])
    assert names(found, tmp_path) == ["open/a.jpg"]
    assert found.problems == [(tmp_path / "locked", "unreadable folder: permission denied")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_unreadable_folder_by_mode(tmp_path):
    touch(tmp_path / "locked" / "b.jpg")
    (tmp_path / "locked").chmod(0)
    try:
        found = discover([tmp_path])
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert found.paths == []
    assert found.problems[0][1] == "unreadable folder: permission denied"


def test_missing_input_and_bad_list_are_user_errors(tmp_path):
    with pytest.raises(SigrlError, match="no such file or folder"):
        discover([tmp_path / "nope"])
    bad = tmp_path / "list.txt"
    bad.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SigrlError, match="not a UTF-8 text file"):
        discover([bad])
    with pytest.raises(SigrlError, match="no inputs"):
        discover([])


def test_walk_does_not_stat_files(tmp_path, monkeypatch):
    for i in range(50):
        touch(tmp_path / f"d{i % 5}" / f"{i}.jpg")
    calls = []
    real_stat = os.stat
    monkeypatch.setattr(sources.os, "stat", lambda p, *a, **k: calls.append(p) or real_stat(p, *a, **k))
    found = discover([tmp_path])
    assert len(found.paths) == 50
    assert len(calls) <= 1 + 6  # the input check, then one per folder; none per file
