"""`sigrl tag` and `sigrl calibrate` through the real entry point on temporary folders."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sigrl.tagging.runs.metafile import read_meta
from sigrl.tagging.outputs.writer import read_records

from cli_helpers import LABELS, MODEL, sigrl, tag_args
from tagging_images import save, smooth_image


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("# world labels\n" + "\n".join(LABELS[:3]) + "\n\n" + "\n".join(LABELS[3:]) + "\n")
    return path


@pytest.fixture
def good_dir(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for i in range(5):
        save(folder / f"img{i}.png", smooth_image(48, 40, seed=i))
    save(folder / "sub" / "photo.JPG", smooth_image(64, 48, seed=9), quality=90)
    return folder


def by_path(records):
    return {os.path.basename(r["path"]): r for r in records}


def test_every_bad_input_gets_an_error_record_and_exit_1(tmp_path, capsys, good_dir, labels_file):
    (good_dir / "empty.jpg").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(smooth_image(96, 96, seed=3)).save(buf, "JPEG", quality=90)
    (good_dir / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])
    (good_dir / "header_only.jpg").write_bytes(buf.getvalue()[:300])
    (good_dir / "notes.jpg").write_text("this is a text file with an image name\n")
    save(good_dir / "bomb.png", smooth_image(120, 100, seed=4))  # 12,000 pixels > --max-pixels
    os.symlink(tmp_path / "gone.png", good_dir / "dangling.png")
    os.mkfifo(good_dir / "pipe.jpg")  # must not block a decode worker
    out = tmp_path / "tags.jsonl"
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, tmp_path / "cache", "--max-pixels", 10_000))
    assert result.code == 1, result.err
    assert "7 errors" in result.out and "6 tagged" in result.out
    records = read_records(out)
    assert len(records) == 13 and len({r["path"] for r in records}) == 13
    got = by_path(records)
    expected = {
        "empty.jpg": "zero-byte file",
        "truncated.jpg": "truncated image",
        "header_only.jpg": "truncated image (inside its header)",
        "notes.jpg": "not an image",
        "bomb.png": "too many pixels (120 x 100 > 10000)",
        "dangling.png": "broken symlink",
        "pipe.jpg": "not a regular file",
    }
    for name, reason in expected.items():
        assert got[name]["status"] == "error" and got[name]["error"] == reason, got[name]
        assert got[name]["tags"] == []
    for name in ["img0.png", "img4.png", "photo.JPG"]:
        assert got[name]["status"] == "ok" and got[name]["error"] is None
        assert len(got[name]["tags"]) == 5  # default rule: top-5 of 5 labels
    meta = read_meta(out)
    assert meta["records"] == 13 and meta["status"] == "complete"
    assert meta["runs"][-1]["errors"] == 7 and meta["runs"][-1]["tagged"] == 6


def test_all_good_exits_0_with_summary_and_metadata(tmp_path, capsys, good_dir, labels_file):
    out = tmp_path / "tags.jsonl"
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, tmp_path / "cache", "--topk", 2, "--scores", "all"))
    assert result.code == 0, result.err
    assert result.out.count("\n") == 1 and "6 images in" in result.out and "0 errors" in result.out
    assert "backend: torch" in result.err  # auto says what it picked and why
    assert "img/s" not in result.err  # stderr is not a terminal: no progress bar by default
    records = read_records(out)
    assert [os.path.basename(r["path"]) for r in records] == ["img0.png", "img1.png", "img2.png", "img3.png", "img4.png", "photo.JPG"]
    for r in records:
        scores = np.array(r["scores"])
        assert scores.shape == (5,)
        best = np.argsort(-scores, kind="stable")[:2]
        assert [t["label"] for t in r["tags"]] == [LABELS[i] for i in best]
        assert [t["score"] for t in r["tags"]] == [r["scores"][i] for i in best]
    meta = read_meta(out)
    assert meta["labels"] == LABELS and meta["model"] == MODEL and meta["backend"] == "torch"
    assert meta["decision"]["topk"] == 2 and meta["precision"] == "fp32"
    assert len(meta["model_hash"]) == 64 and len(meta["label_hash"]) == 64
    assert meta["runs"][0]["images_per_s"] > 0 and meta["runs"][0]["wall_s"] > 0
    assert meta["decode"] == "fast" and meta["max_pixels"] > 10**8


def test_exact_and_checked_decodes_are_recorded_and_score_a_large_jpeg_as_the_full_decode(tmp_path, capsys, labels_file):
    from sigrl.runtime import open_runner
    from sigrl.tagging.decode import DecodeOptions, decode

    folder = tmp_path / "big"
    folder.mkdir()
    save(folder / "big.jpg", smooth_image(1200, 900, seed=4), quality=92)  # drafted by the fast decode
    scores = {}
    for mode in ("fast", "exact"):
        out = tmp_path / f"{mode}.jsonl"
        result = sigrl(capsys, *tag_args(folder, labels_file, out, tmp_path / "cache", "--scores", "all", "--decode", mode, "--device", "cpu"))
        assert result.code == 0, result.err
        assert read_meta(out)["decode"] == mode
        scores[mode] = np.array(read_records(out)[0]["scores"])
    with open_runner(MODEL, backend="torch", device="cpu") as runner:
        full = decode(folder / "big.jpg", runner.preprocess, DecodeOptions(mode="exact"))[None]  # [1, S, S, 3]
        reference = runner.infer(full, LABELS)[0]
    np.testing.assert_allclose(scores["exact"], reference, rtol=0, atol=1e-5)
    assert not np.array_equal(scores["fast"], scores["exact"])  # the drafted pixels differ a little

    # --decode checked: a threshold right at the fast decode's score is a near-tie, so the image
    # is decoded again in full and gets the exact scores.
    out = tmp_path / "checked.jsonl"
    at = f"{scores['fast'][0]:.6f}"
    result = sigrl(capsys, *tag_args(folder, labels_file, out, tmp_path / "cache", "--scores", "all", "--decode", "checked",
                                     "--threshold", at, "--device", "cpu"))
    assert result.code == 0, result.err
    assert "1 near-tie decoded again in full" in result.out
    meta = read_meta(out)
    assert meta["decode"] == "checked" and meta["runs"][-1]["rechecked"] == 1 and meta["runs"][-1]["decode"] == "checked"
    np.testing.assert_allclose(read_records(out)[0]["scores"], scores["exact"], rtol=0, atol=1e-5)


def test_threshold_selects_by_score(tmp_path, capsys, good_dir, labels_file):
    out_all = tmp_path / "all.jsonl"
    assert sigrl(capsys, *tag_args(good_dir, labels_file, out_all, tmp_path / "c", "--scores", "all")).code == 0
    out = tmp_path / "t.jsonl"
    assert sigrl(capsys, *tag_args(good_dir, labels_file, out, tmp_path / "c", "--threshold", 0.0)).code == 0
    full = by_path(read_records(out_all))
    for name, r in by_path(read_records(out)).items():
        expected = {LABELS[i] for i, s in enumerate(full[name]["scores"]) if s >= 0.0}
        assert {t["label"] for t in r["tags"]} == expected
        assert r["scores"] is None


def test_progress_bar_on_request_and_quiet(tmp_path, capsys, good_dir, labels_file):
    result = sigrl(capsys, *tag_args(good_dir, labels_file, tmp_path / "a.jsonl", tmp_path / "c", "--progress"))
    assert result.code == 0
    assert "img/s" in result.err and "errors=0" in result.err and "6/6" in result.err
    result = sigrl(capsys, *tag_args(good_dir, labels_file, tmp_path / "b.jsonl", tmp_path / "c", "--quiet"))
    assert result.code == 0 and result.err == ""
    assert "6 images in" in result.out


def test_exif_rotated_jpeg_scores_like_its_upright_twin(tmp_path, capsys, labels_file):
    folder = tmp_path / "exif"
    folder.mkdir()
    upright = smooth_image(64, 40, seed=5)  # [H=40, W=64]: landscape
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # stored rotated 90 degrees CCW
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": undoes the CCW rotation
    Image.fromarray(stored).save(folder / "rotated.jpg", quality=95, exif=exif)
    Image.fromarray(stored).save(folder / "no_exif.jpg", quality=95)
    # The twin holds exactly the pixels the rotated JPEG decodes to, upright, losslessly stored.
    with Image.open(folder / "rotated.jpg") as im:
        decoded = np.asarray(im.convert("RGB"))
    Image.fromarray(np.ascontiguousarray(np.rot90(decoded, k=-1))).save(folder / "twin.png")
    out = tmp_path / "exif.jsonl"
    assert sigrl(capsys, *tag_args(folder, labels_file, out, tmp_path / "c", "--scores", "all")).code == 0
    got = by_path(read_records(out))
    assert got["rotated.jpg"]["scores"] == got["twin.png"]["scores"]
    assert got["rotated.jpg"]["tags"] == got["twin.png"]["tags"]
    # Without the EXIF tag the same pixels are seen sideways: the check above can fail.
    assert got["no_exif.jpg"]["scores"] != got["twin.png"]["scores"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("cat\ndog\n# note\nCat\n\ndog\n", "'cat' on lines 1, 4; 'dog' on lines 2, 6"),
        ("# only comments\n\n   \n", "no labels (all 3 lines are blank or # comments)"),
    ],
)
def test_label_file_errors_exit_2_and_name_lines(tmp_path, capsys, good_dir, text, fragment):
    labels = tmp_path / "bad_labels.txt"
    labels.write_text(text)
    out = tmp_path / "tags.jsonl"
    result = sigrl(capsys, *tag_args(good_dir, labels, out, tmp_path / "c"))
    assert result.code == 2
    assert result.err.startswith("error: ") and str(labels) in result.err and fragment in result.err
    assert not out.exists()


def test_usage_errors_exit_2(tmp_path, capsys, good_dir, labels_file):
    cache = tmp_path / "c"
    result = sigrl(capsys, *tag_args(tmp_path / "nowhere", labels_file, tmp_path / "a.jsonl", cache))
    assert result.code == 2 and "no such file or folder" in result.err
    result = sigrl(capsys, *tag_args(good_dir, labels_file, tmp_path / "a.txt", cache))
    assert result.code == 2 and "unknown output format" in result.err
    result = sigrl(capsys, *tag_args(good_dir, labels_file, tmp_path / "a.jsonl", cache, "--topk", 0))
    assert result.code == 2 and "'--topk': Input should be greater than or equal to 1" in result.err
    result = sigrl(capsys, *tag_args(good_dir, labels_file, tmp_path / "a.jsonl", cache, "--prompt", "no slot"))
    assert result.code == 2 and "{label}" in result.err
    result = sigrl(capsys, *tag_args(good_dir, labels_file, tmp_path / "a.jsonl", cache, "--decode", "quick"))
    assert result.code == 2 and "--decode must be one of fast, exact, checked" in result.err
    result = sigrl(capsys, "tag", good_dir, "--labels", labels_file, "--out", tmp_path / "a.jsonl", "--model", "sigrl-nope")
    assert result.code == 2


def test_existing_output_is_never_overwritten_silently(tmp_path, capsys, good_dir, labels_file):
    out, cache = tmp_path / "tags.jsonl", tmp_path / "c"
    assert sigrl(capsys, *tag_args(good_dir, labels_file, out, cache)).code == 0
    before = out.read_bytes()
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, cache))
    assert result.code == 2 and "already exists" in result.err and "--resume" in result.err
    assert out.read_bytes() == before
    # Resuming a finished run adds nothing.
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, cache, "--resume"))
    assert result.code == 0 and "6 already done" in result.out and out.read_bytes() == before
    # Resuming with another decision rule would mix two kinds of records: refused.
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, cache, "--resume", "--topk", 1))
    assert result.code == 2 and "thresholds/top-k" in result.err and out.read_bytes() == before
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, cache, "--overwrite", "--topk", 1))
    assert result.code == 0
    assert all(len(r["tags"]) == 1 for r in read_records(out))


@pytest.mark.parametrize("content", [b'{"a": 1}\n{"a": 2}\n', b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\nrest"], ids=["own-jsonl", "jpeg"])
def test_resume_refuses_a_file_sigrl_did_not_write(tmp_path, capsys, good_dir, labels_file, content):
    out = tmp_path / "x.jsonl"
    out.write_bytes(content)
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, tmp_path / "c", "--resume"))
    assert result.code == 2 and "--resume never changes a file it did not write" in result.err
    assert out.read_bytes() == content and not (tmp_path / "x.jsonl.meta.json").exists()


def test_resume_without_sidecar_refuses_to_mix_label_sets(tmp_path, capsys, good_dir, labels_file):
    out, cache = tmp_path / "tags.jsonl", tmp_path / "c"
    assert sigrl(capsys, *tag_args(good_dir, labels_file, out, cache)).code == 0
    (tmp_path / "tags.jsonl.meta.json").unlink()
    before = out.read_bytes()
    other = tmp_path / "other.txt"
    other.write_text("cat\nhouse\n")
    save(good_dir / "late.png", smooth_image(40, 40, seed=11))
    result = sigrl(capsys, *tag_args(good_dir, other, out, cache, "--resume"))
    assert result.code == 2 and "cannot resume without tags.jsonl.meta.json" in result.err
    assert out.read_bytes() == before


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_non_utf8_file_names_in_every_format(tmp_path, capsys, good_dir, labels_file, suffix):
    if suffix == "parquet":
        pytest.importorskip("pyarrow", reason="Parquet output needs the optional pyarrow")
    odd = os.fsdecode(os.fsencode(good_dir) + b"/caf\xe9.png")  # a Latin-1 name: not UTF-8
    os.rename(good_dir / "img0.png", odd)
    out, cache = tmp_path / f"tags.{suffix}", tmp_path / "c"
    assert sigrl(capsys, *tag_args(good_dir, labels_file, out, cache)).code == 0
    assert odd in [r["path"] for r in read_records(out)]
    save(good_dir / "late.png", smooth_image(40, 40, seed=11))
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, cache, "--resume"))
    assert result.code == 0 and "6 already done" in result.out
    paths = [r["path"] for r in read_records(out)]
    assert len(paths) == 7 and paths.count(odd) == 1


def test_resume_tags_only_new_images(tmp_path, capsys, good_dir, labels_file):
    out, cache = tmp_path / "tags.jsonl", tmp_path / "c"
    assert sigrl(capsys, *tag_args(good_dir, labels_file, out, cache)).code == 0
    save(good_dir / "late.png", smooth_image(40, 40, seed=11))
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, cache, "--resume"))
    assert result.code == 0 and "1 images in" in result.out and "6 already done" in result.out
    names = [os.path.basename(r["path"]) for r in read_records(out)]
    assert sorted(names) == sorted(["img0.png", "img1.png", "img2.png", "img3.png", "img4.png", "photo.JPG", "late.png"])
    meta = read_meta(out)
    assert meta["records"] == 7 and [r["tagged"] for r in meta["runs"]] == [6, 1]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_csv_and_parquet_outputs_match_jsonl(tmp_path, capsys, good_dir, labels_file, suffix):
    if suffix == "parquet":
        pytest.importorskip("pyarrow", reason="Parquet output needs the optional pyarrow")
    (good_dir / "empty.png").write_bytes(b"")
    cache = tmp_path / "c"
    assert sigrl(capsys, *tag_args(good_dir, labels_file, tmp_path / "ref.jsonl", cache, "--scores", "all")).code == 1
    out = tmp_path / f"tags.{suffix}"
    assert sigrl(capsys, *tag_args(good_dir, labels_file, out, cache, "--scores", "all")).code == 1
    assert read_records(out) == read_records(tmp_path / "ref.jsonl")
    assert not (tmp_path / f"tags.{suffix}.journal.jsonl").exists()


def test_second_run_takes_labels_from_the_cache(tmp_path, capsys, good_dir, labels_file):
    cache = tmp_path / "cache"
    assert sigrl(capsys, *tag_args(good_dir, labels_file, tmp_path / "a.jsonl", cache)).code == 0
    assert read_meta(tmp_path / "a.jsonl")["runs"][0]["label_side"] == "encoded"
    assert len(list(cache.glob("*.npz"))) == 1
    assert sigrl(capsys, *tag_args(good_dir, labels_file, tmp_path / "b.jsonl", cache)).code == 0
    assert read_meta(tmp_path / "b.jsonl")["runs"][0]["label_side"] == "cache"  # no text-encoder work
    assert read_records(tmp_path / "a.jsonl") == [
        {**r, "path": r["path"]} for r in read_records(tmp_path / "b.jsonl")
    ]
    # Another label order is another label set (scores are normalised over the set).
    (tmp_path / "rev.txt").write_text("\n".join(reversed(LABELS)))
    assert sigrl(capsys, *tag_args(good_dir, tmp_path / "rev.txt", tmp_path / "c.jsonl", cache)).code == 0
    assert read_meta(tmp_path / "c.jsonl")["runs"][0]["label_side"] == "encoded"


def test_path_list_input(tmp_path, capsys, good_dir, labels_file):
    listing = tmp_path / "list.txt"
    listing.write_text("images/img1.png\n# skipped\nimages/missing.png\nimages/img0.png\n")
    out = tmp_path / "tags.jsonl"
    result = sigrl(capsys, *tag_args(listing, labels_file, out, tmp_path / "c"))
    assert result.code == 1
    got = by_path(read_records(out))
    assert set(got) == {"img0.png", "img1.png", "missing.png"}
    assert got["missing.png"]["error"] == "no such file"


def test_calibrate_then_tag_with_the_thresholds(tmp_path, capsys):
    from sigrl.data.manifest import load_manifest
    from sigrl.data.world import SynthSpec, synth
    from sigrl.tagging.decisions.thresholds import read_thresholds

    manifest_path = synth(SynthSpec(out=tmp_path / "world", seed=1, sizes={"test": 16}, workers=1))["test"]
    manifest = load_manifest(manifest_path)
    cache, thresholds = tmp_path / "c", tmp_path / "th.tsv"
    result = sigrl(capsys, "calibrate", "--model", MODEL, "--data", manifest_path, "--out", thresholds, "--label-cache", cache)
    assert result.code == 0, result.err
    assert "64 thresholds from 16 images" in result.out
    values = read_thresholds(thresholds, manifest.labels)
    assert list(values) == list(manifest.labels)
    (tmp_path / "labels.txt").write_text("\n".join(manifest.labels) + "\n")
    out = tmp_path / "tags.jsonl"
    args = tag_args(tmp_path / "world" / "images", tmp_path / "labels.txt", out, cache, "--threshold-file", thresholds)
    assert sigrl(capsys, *args).code == 0
    # The fitted thresholds reproduce the per-label F1 that calibration maximised: recompute it
    # from the tags and compare with the best F1 a sweep over all cuts can reach.
    tags = {os.path.basename(r["path"]): {t["label"] for t in r["tags"]} for r in read_records(out)}
    targets = manifest.targets()  # [M, N]
    names = [os.path.basename(r.path) for r in manifest.records]
    f1_tagged = []
    for j, label in enumerate(manifest.labels):
        pos = targets[:, j] > 0
        if not pos.any():
            continue
        chosen = np.array([label in tags[n] for n in names])
        f1_tagged.append(2 * (chosen & pos).sum() / (chosen.sum() + pos.sum()))
    reported = float(result.out.split("macro F1 ")[1].split()[0])
    assert np.mean(f1_tagged) == pytest.approx(reported, abs=1e-3)
    assert reported > 0.0


def test_calibrate_never_writes_into_the_install(tmp_path, capsys):
    from sigrl import default_model

    package = Path(default_model.path()).parent
    before = sorted(p.name for p in package.iterdir())
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")
    result = sigrl(capsys, "calibrate", "--data", manifest, "--label-cache", tmp_path / "c")  # embedded model, no --out
    assert result.code == 2 and "belongs to the sigrl install" in result.err and "--out" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert sorted(p.name for p in package.iterdir()) == before


def test_thresholds_next_to_the_model_are_the_default(tmp_path, capsys, good_dir, labels_file):
    from sigrl.model import create_model
    from sigrl.model.factory import save_model

    checkpoint = tmp_path / "tiny.safetensors"
    save_model(checkpoint, create_model(MODEL))
    (tmp_path / "tiny.thresholds.tsv").write_text("".join(f"{l}\t0.05\n" for l in LABELS))
    out = tmp_path / "tags.jsonl"
    result = sigrl(capsys, "tag", good_dir, "--labels", labels_file, "--out", out, "--model", checkpoint,
                   "--label-cache", tmp_path / "c", "--scores", "all")
    assert result.code == 0, result.err
    assert "thresholds fitted for these labels" in result.err
    for r in read_records(out):
        assert {t["label"] for t in r["tags"]} == {LABELS[i] for i, s in enumerate(r["scores"]) if s >= 0.05}


def test_ctrl_c_exits_130_and_resume_finishes(tmp_path, capsys, good_dir, labels_file, monkeypatch):
    from sigrl.runtime.base import Runner

    real, calls = Runner.infer, []

    def interrupt_second_batch(self, images, labels):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, images, labels)

    monkeypatch.setattr(Runner, "infer", interrupt_second_batch)
    out, cache = tmp_path / "tags.jsonl", tmp_path / "c"
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, cache, "--batch-size", 2, "--workers", 0))
    assert result.code == 130 and "--resume" in result.err
    assert len(read_records(out)) == 2 and read_meta(out)["status"] == "interrupted"
    monkeypatch.setattr(Runner, "infer", real)
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, cache, "--resume"))
    assert result.code == 0 and "2 already done" in result.out and len(read_records(out)) == 6


def test_symlink_loop_is_reported_not_fatal(tmp_path, capsys, good_dir, labels_file):
    os.symlink(good_dir, good_dir / "sub" / "back_up")  # a link to a folder above it
    out = tmp_path / "tags.jsonl"
    result = sigrl(capsys, *tag_args(good_dir, labels_file, out, tmp_path / "c"))
    assert result.code == 0, result.err
    assert "note: " in result.err and "symlink loop" in result.err and "1 folder problem" in result.out
    assert len(read_records(out)) == 6  # each image once, not again through the loop
    problems = read_meta(out)["runs"][0]["problems"]
    assert len(problems) == 1 and problems[0]["path"].endswith("back_up") and "symlink loop" in problems[0]["reason"]


def test_prompt_template_changes_scores_and_is_recorded(tmp_path, capsys, good_dir, labels_file):
    cache = tmp_path / "c"
    plain, prompted = tmp_path / "plain.jsonl", tmp_path / "prompted.jsonl"
    assert sigrl(capsys, *tag_args(good_dir, labels_file, plain, cache, "--scores", "all")).code == 0
    args = tag_args(good_dir, labels_file, prompted, cache, "--scores", "all", "--prompt", "a photo of a {label}")
    assert sigrl(capsys, *args).code == 0
    a = {r["path"]: r["scores"] for r in read_records(plain)}
    b = {r["path"]: r["scores"] for r in read_records(prompted)}
    assert a.keys() == b.keys()
    assert max(abs(x - y) for p in a for x, y in zip(a[p], b[p])) > 1e-4
    assert read_meta(prompted)["prompt"] == "a photo of a {label}"
