"""The device decode path (sigrl.device_decode, sigrl.tagging.scoring.device_pipeline), run on the CPU.

torchvision's CPU JPEG decoder stands in for nvJPEG (the one device call, decode_jpegs, takes
device="cpu"); a failing stand-in exercises the fallback to the CPU decoder. The same path on a
CUDA GPU is compared with the CPU decoder in test_device_decode_cuda.py.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from sigrl import device_decode
from sigrl.config import PreprocessConfig
from sigrl.decode import DecodeOptions, decode
from sigrl.tagging.decisions.rule import make_rule
from sigrl.tagging.scoring.device_pipeline import iter_device_batches
from sigrl.tagging.inputs.member import Member
from sigrl.tagging.scoring.pipeline import iter_batches
from sigrl.tagging.records import batch_records
from sigrl.tagging.scoring.scorer import BatchScorer, uses_device_decode

from tagging_images import smooth_image

EXACT = DecodeOptions(mode="exact")
LABELS = ["cat", "dog", "car", "tree", "house", "boat", "bird"]


def jpeg_bytes(array: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=92, **kwargs)
    return buf.getvalue()


def with_orientation(array: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg_bytes(array, exif=exif.tobytes())


@pytest.fixture
def mixed(tmp_path):
    """good JPEG, PNG, CMYK JPEG, truncated JPEG, progressive JPEG, zero-byte file, good JPEG."""
    files = {}
    good = jpeg_bytes(smooth_image(96, 64, seed=1))
    files["good.jpg"] = good
    png = io.BytesIO()
    Image.fromarray(smooth_image(50, 70, seed=2)).save(png, "PNG")
    files["pic.png"] = png.getvalue()
    cmyk = io.BytesIO()
    Image.fromarray(smooth_image(80, 60, seed=3)).convert("CMYK").save(cmyk, "JPEG", quality=92)
    files["cmyk.jpg"] = cmyk.getvalue()
    files["cut.jpg"] = jpeg_bytes(smooth_image(96, 64, seed=4))[:300]
    files["prog.jpg"] = jpeg_bytes(smooth_image(72, 90, seed=5), progressive=True)
    files["empty.jpg"] = b""
    files["late.jpg"] = jpeg_bytes(smooth_image(64, 64, seed=6))
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    return paths


def device_batches(paths, preprocess, decoding=DecodeOptions(), batch_size=4):
    return list(iter_device_batches(paths, preprocess, "cpu", batch_size=batch_size, workers=2, decoding=decoding))


def test_mixed_batch_keeps_order_and_gives_each_bad_file_its_reason(mixed, preprocess):
    device = device_batches(mixed, preprocess, batch_size=7)
    cpu = list(iter_batches(mixed, preprocess, batch_size=7, workers=2))
    assert len(device) == 1
    # Same images and failures, in the same order, as the CPU pipeline.
    assert [p.name for p in device[0].paths] == [p.name for p in cpu[0].paths] == [
        "good.jpg", "pic.png", "cmyk.jpg", "prog.jpg", "late.jpg"]
    assert [(p.name, r) for p, r in device[0].failures] == [(p.name, r) for p, r in cpu[0].failures]
    assert [p.name for p, _ in device[0].failures] == ["cut.jpg", "empty.jpg"]
    assert dict((p.name, r) for p, r in device[0].failures)["empty.jpg"] == "zero-byte file"
    images = device[0].images
    assert isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and tuple(images.shape) == (5, 32, 32, 3)
    # PNG and CMYK went through the CPU decoder: exactly its pixels.
    np.testing.assert_array_equal(images[1].numpy(), cpu[0].images[1])
    np.testing.assert_array_equal(images[2].numpy(), cpu[0].images[2])


def test_every_input_appears_once_across_batches(mixed, preprocess):
    batches = device_batches(mixed, preprocess, batch_size=3)
    assert [len(b) for b in batches] == [3, 3, 1]
    seen = [p.name for b in batches for p in b.paths] + [p.name for b in batches for p, _ in b.failures]
    assert sorted(seen) == sorted(p.name for p in mixed)


def test_triage_routes_what_the_device_does_not_take():
    good = jpeg_bytes(smooth_image(40, 30))
    assert device_decode.triage(good, DecodeOptions()).on_device
    cmyk = io.BytesIO()
    Image.fromarray(smooth_image(40, 30)).convert("CMYK").save(cmyk, "JPEG")
    assert device_decode.triage(cmyk.getvalue(), DecodeOptions()).why == "CMYK JPEG"
    assert device_decode.triage(b"\x89PNG\r\n\x1a\n", DecodeOptions()).why == "not a JPEG"
    assert device_decode.triage(good, DecodeOptions(max_pixels=100)).why == "size"
    assert device_decode.triage(with_orientation(smooth_image(40, 30), 6), DecodeOptions()).orientation == 6


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_the_cpu_decoder(tmp_path, orientation):
    # Not square and no resize (resize_size = the shorter side after rotation would differ): a
    # 48x32 picture cropped to 32 shows any wrong flip or turn as a large difference.
    pre = PreprocessConfig(image_size=32, resize_size=32, interpolation="bicubic")
    path = tmp_path / f"o{orientation}.jpg"
    path.write_bytes(with_orientation(smooth_image(48, 32, seed=orientation), orientation))
    (batch,) = device_batches([path], pre)
    assert not batch.failures
    expected = decode(path, pre, EXACT)
    diff = np.abs(batch.images[0].numpy().astype(int) - expected.astype(int))
    assert diff.max() <= 2, (orientation, diff.max())


def test_orient_matches_pil_exif_transpose():
    from PIL import ImageOps

    array = smooth_image(7, 5, seed=9)
    tensor = torch.from_numpy(array).permute(2, 0, 1)  # [3, H, W]
    for orientation in range(1, 9):
        im = Image.fromarray(array)
        exif = im.getexif()
        exif[0x0112] = orientation
        im.info["exif"] = exif.tobytes()
        upright = np.asarray(ImageOps.exif_transpose(im))
        np.testing.assert_array_equal(device_decode.orient(tensor, orientation).permute(1, 2, 0).numpy(), upright)


def test_device_decoder_failure_falls_back_for_that_image_only(mixed, preprocess, monkeypatch):
    real = device_decode.decode_jpegs
    bad = (mixed[0].read_bytes())  # the good JPEG: the stand-in "GPU" rejects it
    calls = []

    def picky(datas, device):
        calls.append(len(datas))
        if any(bytes(d.numpy()) == bad for d in datas):
            raise RuntimeError("nvjpeg: unsupported")
        return real(datas, device)

    monkeypatch.setattr(device_decode, "decode_jpegs", picky)
    (batch,) = device_batches(mixed, preprocess, batch_size=7)
    assert calls == [3, 1, 1, 1]  # the batch of 3 device JPEGs, then one at a time
    assert [p.name for p in batch.paths] == ["good.jpg", "pic.png", "cmyk.jpg", "prog.jpg", "late.jpg"]
    np.testing.assert_array_equal(batch.images[0].numpy(), decode(mixed[0], preprocess))  # the CPU decoder's pixels
    assert len(batch.failures) == 2


def test_a_device_that_rejects_everything_gives_the_cpu_pipelines_batches(mixed, preprocess, monkeypatch):
    def broken(datas, device):
        raise RuntimeError("no device")

    monkeypatch.setattr(device_decode, "decode_jpegs", broken)
    device = device_batches(mixed, preprocess, batch_size=4)
    cpu = list(iter_batches(mixed, preprocess, batch_size=4, workers=2))
    for d, c in zip(device, cpu):
        assert d.paths == c.paths and d.failures == c.failures
        np.testing.assert_array_equal(d.images.numpy(), c.images)
        np.testing.assert_array_equal(d.reduced, c.reduced)


def test_device_resize_failure_falls_back(mixed, preprocess, monkeypatch):
    def no_memory(image, pre):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(device_decode, "resize_crop_tensor", no_memory)
    (batch,) = device_batches(mixed[:1], preprocess)
    np.testing.assert_array_equal(batch.images[0].numpy(), decode(mixed[0], preprocess))


def test_members_bytes_and_pixels(preprocess):
    data = jpeg_bytes(smooth_image(60, 40, seed=3))
    pixels = smooth_image(30, 30, seed=4)
    members = [Member("a.tar#x", data=data, meta={"k": 1}), Member("a.tar#y", error="cut off"),
               Member("array[2]", data=pixels), Member("a.tar#z", data=b"")]
    (batch,) = device_batches(members, preprocess)
    assert batch.paths == ["a.tar#x", "array[2]"]
    assert batch.failures == [("a.tar#y", "cut off"), ("a.tar#z", "zero-byte image data")]
    assert batch.meta == {"a.tar#x": {"k": 1}}
    assert [s.path for s in batch.sources] == ["a.tar#x", "array[2]"]
    np.testing.assert_array_equal(batch.images[1].numpy(), decode(pixels, preprocess))


def test_parity_with_the_cpu_decoder_on_photos(tmp_path):
    """Device path (on the CPU) against --decode exact at the model's own size: pixels within a few
    levels. The measured maximum is printed for the record (pytest -s)."""
    pre = PreprocessConfig(image_size=224, resize_size=224, interpolation="bicubic")
    paths = []
    for i, (w, h) in enumerate([(640, 480), (480, 640), (1024, 768), (300, 225)]):
        p = tmp_path / f"p{i}.jpg"
        p.write_bytes(jpeg_bytes(smooth_image(w, h, seed=10 + i)))
        paths.append(p)
    (batch,) = device_batches(paths, pre)
    expected = np.stack([decode(p, pre, EXACT) for p in paths])
    diff = np.abs(batch.images.numpy().astype(int) - expected.astype(int))
    print(f"device path vs CPU exact: max abs diff {diff.max()}, mean {diff.mean():.4f}")
    assert diff.max() <= 2 and diff.mean() < 0.1


def test_scores_and_records_through_the_batch_scorer(mixed, tiny_model):
    from sigrl.runtime.torch_runner import TorchRunner

    rule = make_rule(LABELS, topk=5)
    with TorchRunner(tiny_model) as runner:
        assert not uses_device_decode(runner, DecodeOptions())  # a CPU runner keeps the CPU decoder
        assert not uses_device_decode(runner, EXACT, wanted=True)  # exact always does
        results = {}
        for forced in (True, False):
            scorer = BatchScorer(runner, LABELS, rule, 4, 2, DecodeOptions(), device_decode=forced)
            assert scorer.device_decode is forced
            records = [r for batch, scores in scorer(mixed) for r in batch_records(batch.paths, scores, rule, batch.failures)]
            results[forced] = records
    device, cpu = results[True], results[False]
    assert [(r["path"], r["status"], r["error"]) for r in device] == [(r["path"], r["status"], r["error"]) for r in cpu]
    assert {r["path"].rsplit("/", 1)[-1] for r in device if r["status"] == "error"} == {"cut.jpg", "empty.jpg"}
    # Top-5 sets agree on every image (the tiny model at 32 px; printed for the record).
    agree = sum({t["label"] for t in a["tags"]} == {t["label"] for t in b["tags"]}
                for a, b in zip(device, cpu) if a["status"] == "ok")
    print(f"top-5 agreement device vs CPU path: {agree}/5")
    assert agree == 5


def test_torch_runner_takes_device_tensors(tiny_model, tiny_images):
    from sigrl.errors import SigrlError
    from sigrl.runtime.torch_runner import TorchRunner

    with TorchRunner(tiny_model) as runner:
        from_numpy = runner.infer(tiny_images.numpy(), LABELS)  # [3, N]
        np.testing.assert_array_equal(runner.infer(tiny_images, LABELS), from_numpy)
        with pytest.raises(SigrlError, match="uint8"):
            runner.infer(tiny_images.float(), LABELS)
        with pytest.raises(SigrlError, match="uint8"):
            runner.infer(tiny_images[:, :16], LABELS)


def test_cpu_decode_option_reaches_the_job_and_the_scorer(tmp_path):
    from sigrl.tagging.spec import build_job

    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    assert build_job([tmp_path], labels, tmp_path / "out.jsonl", model="sigrl-tiny").decoding.gpu_decode
    job = build_job([tmp_path], labels, tmp_path / "out.jsonl", model="sigrl-tiny", gpu_decode=False)
    assert not job.decoding.gpu_decode

    class CudaRunner:  # what uses_device_decode looks at
        device, accepts_device_tensors = "cuda", True

    assert uses_device_decode(CudaRunner(), DecodeOptions())
    assert not uses_device_decode(CudaRunner(), job.decoding)
    assert not uses_device_decode(CudaRunner(), DecodeOptions(mode="exact"))


def test_same_size_images_are_resized_together_in_budgeted_chunks(preprocess, monkeypatch):
    calls = []
    real = device_decode.resize_crop_tensor

    def counting(x, pre):
        calls.append(tuple(x.shape))
        return real(x, pre)

    monkeypatch.setattr(device_decode, "resize_crop_tensor", counting)
    monkeypatch.setattr(device_decode, "RESIZE_BUDGET", 4 * 3 * 64 * 96 * 2)  # two 96x64 images per call
    datas = [jpeg_bytes(smooth_image(96, 64, seed=i)) for i in range(5)] + [jpeg_bytes(smooth_image(50, 70, seed=9))]
    decoder = device_decode.DeviceDecoder(preprocess, "cpu")
    out = decoder.decode(datas, [1] * 6)
    assert calls == [(2, 3, 64, 96), (2, 3, 64, 96), (1, 3, 64, 96), (1, 3, 70, 50)]
    assert decoder.device_images == 6
    for data, image in zip(datas, out):
        expected = real(device_decode.decode_jpegs([torch.frombuffer(bytearray(data), dtype=torch.uint8)], "cpu")[0], preprocess)
        torch.testing.assert_close(image, expected, rtol=0, atol=0)


def test_a_device_decoder_that_never_works_is_given_up_after_one_batch(preprocess, monkeypatch):
    calls = []

    def broken(datas, device):
        calls.append(len(datas))
        raise RuntimeError("no nvjpeg in this build")

    monkeypatch.setattr(device_decode, "decode_jpegs", broken)
    datas = [jpeg_bytes(smooth_image(40, 30, seed=i)) for i in range(3)]
    decoder = device_decode.DeviceDecoder(preprocess, "cpu")
    assert decoder.decode(datas, [1] * 3) == [None] * 3
    assert calls == [3, 1, 1, 1] and decoder.disabled == "RuntimeError: no nvjpeg in this build"
    assert decoder.decode(datas, [1] * 3) == [None] * 3
    assert calls == [3, 1, 1, 1]  # not tried again


def test_a_device_decoder_that_worked_once_keeps_trying(preprocess, monkeypatch):
    real = device_decode.decode_jpegs
    state = {"fail": False}

    def flaky(datas, device):
        if state["fail"]:
            raise RuntimeError("odd sampling")
        return real(datas, device)

    monkeypatch.setattr(device_decode, "decode_jpegs", flaky)
    datas = [jpeg_bytes(smooth_image(40, 30, seed=i)) for i in range(2)]
    decoder = device_decode.DeviceDecoder(preprocess, "cpu")
    assert all(x is not None for x in decoder.decode(datas, [1, 1]))
    state["fail"] = True
    assert decoder.decode(datas, [1, 1]) == [None, None] and decoder.disabled is None


def test_the_run_summary_counts_images_decoded_on_the_device(mixed, tiny_model):
    from sigrl.runtime.torch_runner import TorchRunner
    from sigrl.tagging.runs.summary import Summary

    rule = make_rule(LABELS, topk=5)
    with TorchRunner(tiny_model) as runner:
        on = BatchScorer(runner, LABELS, rule, 4, 2, DecodeOptions(), device_decode=True)
        assert sum(len(b.paths) for b, _ in on(mixed)) == 5
        assert on.gpu_decoded == 3  # good.jpg, prog.jpg, late.jpg; PNG and CMYK on the CPU
        off = BatchScorer(runner, LABELS, rule, 4, 2, DecodeOptions())
        list(off(mixed))
        assert off.gpu_decoded is None
    assert "3 decoded on the GPU" in Summary(output="x", meta="x.meta", gpu_decoded=3).line()
    assert "GPU" not in Summary(output="x", meta="x.meta").line()


def test_decode_calls_are_split_by_the_pixel_budget(preprocess, monkeypatch):
    calls = []
    real = device_decode.decode_jpegs

    def counting(datas, device):
        calls.append(len(datas))
        return real(datas, device)

    monkeypatch.setattr(device_decode, "decode_jpegs", counting)
    monkeypatch.setattr(device_decode, "DECODE_BUDGET", 3 * 96 * 64 * 2)  # two 96x64 images per call
    datas = [jpeg_bytes(smooth_image(96, 64, seed=i)) for i in range(5)]
    seen = [device_decode.triage(d, DecodeOptions()) for d in datas]
    assert {t.pixels for t in seen} == {96 * 64}
    decoder = device_decode.DeviceDecoder(preprocess, "cpu")
    out = decoder.decode(datas, [1] * 5, [t.pixels for t in seen])
    assert calls == [2, 2, 1] and all(x is not None for x in out)
    calls.clear()
    assert all(x is not None for x in decoder.decode(datas, [1] * 5))  # no sizes: one call
    assert calls == [5]


def test_sigrl_tag_on_a_cpu_runner_gives_todays_records_with_either_flag(tmp_path, capsys, mixed):
    from cli_helpers import sigrl, tag_args

    from sigrl.tagging.runs.metafile import read_meta
    from sigrl.tagging.outputs.writer import read_records

    work = tmp_path / "work"  # inside the scanned folder, but nothing in it has an image extension
    work.mkdir()
    labels = work / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    runs = {}
    for flag in ("--gpu-decode", "--cpu-decode"):
        out = work / f"tags{flag}.jsonl"
        result = sigrl(capsys, *tag_args(mixed[0].parent, labels, out, work / "cache", "--device", "cpu", flag,
                                         "--scores", "all"))
        assert result.code == 1, result.err  # cut.jpg and empty.jpg fail
        assert "decoded on the GPU" not in result.out
        assert read_meta(out)["runs"][-1]["gpu_decoded"] is None
        runs[flag] = read_records(out)
    assert runs["--gpu-decode"] == runs["--cpu-decode"]
    assert sum(r["status"] == "error" for r in runs["--cpu-decode"]) == 2
