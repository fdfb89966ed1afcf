from __future__ import annotations

import pytest

from sigrl.atomic import write_text_atomic


@pytest.mark.parametrize("durable", [False, True])
def test_replaces_whole_and_leaves_no_temporary_files(tmp_path, durable):
    path = tmp_path / "sub" / "meta.json"
    write_text_atomic(path, "first\n", durable=durable)
    write_text_atomic(path, "second ✓\n", durable=durable)
    assert path.read_text(encoding="utf-8") == "second ✓\n"
    assert [p.name for p in path.parent.iterdir()] == ["meta.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "meta.json"
    write_text_atomic(path, "old\n")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(path, "bad \ud800\n")  # a lone surrogate cannot be encoded
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]
