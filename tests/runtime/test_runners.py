"""Torch and ONNX runners on the tiny model: agreement, label memo, batching, lifetime."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_fixtures import LABELS

from sigrl.errors import SigrlError
from sigrl.runtime import LabelCache
from sigrl.runtime.onnx_runner import OnnxRunner
from sigrl.runtime.torch_runner import TorchRunner


def test_torch_and_onnx_agree(tiny_model, tiny_export, images):
    with TorchRunner(tiny_model) as torch_runner, OnnxRunner(tiny_export) as onnx_runner:
        for labels in (LABELS, LABELS[:1], LABELS[2:6]):  # N = 7, 1, 4: other than the traced 5
            expected = torch_runner.infer(images, labels)
            got = onnx_runner.infer(images, labels)
            assert got.dtype == np.float32 and got.shape == (5, len(labels))
            np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
            assert len(labels) == 1 or np.abs(expected).max() > 1e-3  # real scores, not zeros
        # one image at a time gives the same rows (no coupling across the batch)
        row = onnx_runner.infer(images[2:3], LABELS)
        np.testing.assert_allclose(row, torch_runner.infer(images, LABELS)[2:3], atol=1e-4)


def test_label_side_matches_model(tiny_model, tiny_export):
    side = tiny_model.encode_labels(LABELS)
    with OnnxRunner(tiny_export) as runner:
        arrays = runner.label_side(LABELS)
    np.testing.assert_allclose(arrays.embeddings, side.embeddings.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(arrays.context, side.context.detach().numpy(), atol=1e-4)


def test_label_side_memoised(tiny_model, images):
    runner = TorchRunner(tiny_model)
    first = runner.infer(images, LABELS)
    runner.infer(images[:2], LABELS)
    runner.infer(images, list(LABELS))  # an equal list is the same label set
    assert runner.text_runs == 1
    runner.infer(images, LABELS[::-1])  # another order is another set (GMC and normalisation see it)
    assert runner.text_runs == 2
    np.testing.assert_allclose(runner.infer(images, LABELS), first, atol=0)
    assert runner.text_runs == 2


def test_int8_variant_close_to_fp32(tiny_export, images):
    with OnnxRunner(tiny_export) as fp32, OnnxRunner(tiny_export, precision="int8") as int8:
        a, b = fp32.infer(images, LABELS), int8.infer(images, LABELS)
    assert int8.graph_path.name == "image.int8.onnx"
    assert not np.array_equal(a, b)  # it is really another graph
    assert np.abs(a - b).max() < 0.1


def test_batches_are_split_by_max_batch(tiny_model, tiny_export, images):
    with OnnxRunner(tiny_export) as whole, OnnxRunner(tiny_export, head_budget=1) as split:
        assert split.max_batch(len(LABELS)) == 1 and whole.max_batch(len(LABELS)) > 5
        np.testing.assert_allclose(split.infer(images, LABELS), whole.infer(images, LABELS), atol=1e-5)


def test_max_batch_bounds_head_memory(tiny_export):
    with OnnxRunner(tiny_export, head_budget=3 * 16 * 64 * 4 * 10 * 8) as runner:  # P=16, D=64, fp32
        assert runner.max_batch(10) == 8
        assert runner.max_batch(80) == 1
        assert runner.max_batch(20) == 4


def test_torch_max_batch_uses_label_chunk(tiny_model):
    budget = 3 * 16 * 64 * 4 * 16 * 2  # two images of one 16-label chunk
    runner = TorchRunner(tiny_model, head_budget=budget)
    assert runner.max_batch(1000) == runner.max_batch(16) == 2


def test_context_manager_closes(tiny_export, images):
    with OnnxRunner(tiny_export) as runner:
        runner.infer(images[:1], LABELS)
        assert not runner.closed
    assert runner.closed and runner.session is None
    with pytest.raises(SigrlError, match="closed"):
        runner.infer(images[:1], LABELS)


def test_bad_inputs_raise(tiny_model, images):
    runner = TorchRunner(tiny_model)
    with pytest.raises(SigrlError, match="uint8"):
        runner.infer(images.astype(np.float32), LABELS)
    with pytest.raises(SigrlError, match=r"\[B, 32, 32, 3\]"):
        runner.infer(images[:, :16], LABELS)
    with pytest.raises(SigrlError, match="empty"):
        runner.infer(images, [])


def test_precision_and_device_checks(tiny_model, tiny_export):
    with pytest.raises(SigrlError, match="fp16 needs a CUDA"):
        TorchRunner(tiny_model, precision="fp16")
    with pytest.raises(SigrlError, match="precision"):
        TorchRunner(tiny_model, precision="int4")
    with pytest.raises(SigrlError, match="no fp16 image graph|meant for CUDA"):
        OnnxRunner(tiny_export, precision="fp16")


def test_torch_bf16_close_to_fp32(tiny_model, images):
    fp32 = TorchRunner(tiny_model).infer(images, LABELS)
    bf16 = TorchRunner(tiny_model, precision="bf16").infer(images, LABELS)
    assert np.abs(fp32 - bf16).max() < 0.05
    assert (fp32.argmax(1) == bf16.argmax(1)).mean() >= 0.8


def test_missing_variant_named(tiny_export, tmp_path):
    import json
    import shutil

    copy = shutil.copytree(tiny_export, tmp_path / "copy")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["variants"]["image"].pop("int8")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SigrlError, match=r"no int8 image graph .* --precision int8"):
        OnnxRunner(copy, precision="int8")


def test_shared_disk_cache_skips_text_work(tiny_model, tiny_export, images, tmp_path):
    cache = LabelCache(tmp_path / "labels")
    with OnnxRunner(tiny_export, label_cache=cache) as first:
        expected = first.infer(images, LABELS)
    assert first.text_runs == 1 and cache.writes == 1
    second_cache = LabelCache(tmp_path / "labels")
    with OnnxRunner(tiny_export, label_cache=second_cache) as second:
        got = second.infer(images, LABELS)
    assert second.text_runs == 0 and second_cache.hits == 1
    np.testing.assert_array_equal(got, expected)
    # the torch runner of the same weights shares the entries (same model hash, labels, prompt)
    torch_runner = TorchRunner(tiny_model, label_cache=LabelCache(tmp_path / "labels"))
    np.testing.assert_allclose(torch_runner.infer(images, LABELS), expected, atol=1e-4)
    assert torch_runner.text_runs == 0


def test_set_prompt_changes_the_label_side_like_the_model_config(tiny_model, tiny_export, images):
    import pytest

    from sigrl.errors import SigrlError
    from sigrl.model import SigRL

    template = "a photo of a {label}"
    reprompted = SigRL(tiny_model.config.replace(text={"prompt": template}), tiny_model.clip, tiny_model.arch).eval()
    reprompted.load_state_dict(tiny_model.state_dict())
    with TorchRunner(reprompted) as reference:
        expected = reference.infer(images, LABELS)
    with TorchRunner(tiny_model) as torch_runner, OnnxRunner(tiny_export) as onnx_runner:
        before = torch_runner.infer(images, LABELS)
        for runner in (torch_runner, onnx_runner):
            runner.set_prompt(template)
            assert runner.prompt == template
            np.testing.assert_allclose(runner.infer(images, LABELS), expected, atol=1e-4)
        assert np.abs(before - expected).max() > 1e-4  # the prompt really matters
        with pytest.raises(SigrlError, match="must contain"):
            torch_runner.set_prompt("no placeholder")


@pytest.mark.parametrize("variant", ["clip", "mkt"])
def test_heads_without_label_context_export_and_run(tmp_path, tiny_model, images, variant):
    """The tracer drops an input a head never reads: the manifest names what the graph has and the
    runner feeds exactly that (the embedded default model is such a head)."""
    from sigrl.export.exporter import export_model
    from sigrl.model import create_model, save_model

    model = create_model(tiny_model.config.replace(head={"variant": variant})).eval()
    save_model(tmp_path / "m.safetensors", model)
    export_model(str(tmp_path / "m.safetensors"), tmp_path / "out", format="onnx")
    with TorchRunner(model) as torch_runner, OnnxRunner(tmp_path / "out") as onnx_runner:
        graph_inputs = tuple(i.name for i in onnx_runner.session.get_inputs())
        assert onnx_runner.manifest.image_inputs == graph_inputs
        assert variant != "clip" or graph_inputs == ("images", "embeddings")
        np.testing.assert_allclose(onnx_runner.infer(images, LABELS), torch_runner.infer(images, LABELS), atol=1e-4, rtol=0)


def test_word_composed_model_agrees_across_runners(tiny_model, images, tmp_path):
    """A model whose labels are their words' mean (text.compose "words", best-patch head): the
    runners compose from the text side's word rows, and agree with the PyTorch model."""
    import torch
    from runtime_fixtures import write_export

    from sigrl.model import SigRL
    from sigrl.runtime.torch_runner import weights_sha256

    model = SigRL(tiny_model.config.replace(head={"variant": "patch"}, text={"compose": "words"}),
                  tiny_model.clip, tiny_model.arch).eval()
    export = write_export(model, tmp_path / "words", weights_sha256(model))
    labels = ["red car", "blue sky", "red sky", "car"]
    x = model.normalize_uint8(torch.from_numpy(images))
    expected = model(x, model.encode_labels(labels)).detach().numpy()  # [5, 4]
    with TorchRunner(model) as torch_runner, OnnxRunner(export) as onnx_runner:
        assert onnx_runner.manifest.compose == "words"
        np.testing.assert_allclose(torch_runner.infer(images, labels), expected, atol=1e-5)
        np.testing.assert_allclose(onnx_runner.infer(images, labels), expected, atol=1e-4)
        side = onnx_runner.label_side(labels)
        np.testing.assert_allclose(side.embeddings, model.embed_labels(labels).numpy(), atol=1e-5)
    assert weights_sha256(model) != weights_sha256(tiny_model)  # the config is in the hash: no cache clash
