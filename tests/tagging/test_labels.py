import pytest

from sigrl.errors import SigrlError
from sigrl.tagging.decisions.labels import read_labels


def write(tmp_path, content, name="labels.txt"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_comments_blank_lines_and_whitespace(tmp_path):
    path = write(tmp_path, "\ufeff# animals\n  cat \n\n\tdog\n# done\nC# programmer\nrote Beete\n")
    assert read_labels(path) == ["cat", "dog", "C# programmer", "rote Beete"]


def test_duplicates_list_every_line(tmp_path):
    path = write(tmp_path, "cat\ndog\n\nCat\nbird\ndog\nred  car\nred car\n")
    with pytest.raises(SigrlError) as info:
        read_labels(path)
    message = str(info.value)
    assert str(path) in message
    assert "'cat' on lines 1, 4" in message
    assert "'dog' on lines 2, 6" in message
    assert "'red  car' on lines 7, 8" in message
    assert "bird" not in message


def test_empty_set(tmp_path):
    path = write(tmp_path, "# nothing yet\n\n   \n")
    with pytest.raises(SigrlError, match=r"labels\.txt: no labels \(all 3 lines are blank or # comments\)"):
        read_labels(path)


def test_not_utf8_names_the_line(tmp_path):
    path = write(tmp_path, b"cat\ndog\ncaf\xe9\n")
    with pytest.raises(SigrlError, match=r"line 3 is not valid UTF-8.*save the label file as UTF-8"):
        read_labels(path)


def test_missing_file(tmp_path):
    with pytest.raises(SigrlError, match="label file not found"):
        read_labels(tmp_path / "nope.txt")
