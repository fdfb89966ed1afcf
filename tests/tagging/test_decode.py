import io
import os

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from sigrl.config import PreprocessConfig
from sigrl.tagging import decode as decode_module
from sigrl.errors import SigrlError
from sigrl.tagging.decode import DEFAULT_MAX_PIXELS, DecodeError, DecodeOptions, decode

from tagging_images import save, smooth_image

EXACT = PreprocessConfig(image_size=40, resize_size=40, interpolation="nearest")  # no resampling
FULL = DecodeOptions(mode="exact")  # never drafts


def reason(path, preprocess, options=DecodeOptions()) -> str:
    with pytest.raises(DecodeError) as info:
        decode(path, preprocess, options)
    return info.value.reason


# --- bad input -------------------------------------------------------------------------------

def test_zero_byte(tmp_path, preprocess):
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert reason(tmp_path / "empty.jpg", preprocess) == "zero-byte file"


def test_truncated_jpeg(tmp_path, preprocess):
    buf = io.BytesIO()
    Image.fromarray(smooth_image(200, 150)).save(buf, format="JPEG", quality=90)
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert reason(tmp_path / "cut.jpg", preprocess) == "truncated image"


def test_text_named_jpg(tmp_path, preprocess):
    (tmp_path / "notes.jpg").write_text("this is not a picture\n")
    assert reason(tmp_path / "notes.jpg", preprocess) == "not an image"


def test_decompression_bomb_checked_before_load(tmp_path, preprocess, monkeypatch):
    save(tmp_path / "big.png", smooth_image(300, 200))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("pixels decoded before the size check"))
    assert reason(tmp_path / "big.png", preprocess, DecodeOptions(max_pixels=50_000)) == "too many pixels (300 x 200 > 50000)"


def test_unreadable_file(tmp_path, preprocess, monkeypatch):
    save(tmp_path / "secret.png", smooth_image(40, 40))

    # Root reads files whatever their mode, so the permission failure is simulated at open().
    def deny(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(decode_module, "_open_fd", deny)
    assert reason(tmp_path / "secret.png", preprocess) == "unreadable: permission denied"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_by_mode(tmp_path, preprocess):
    save(tmp_path / "secret.png", smooth_image(40, 40))
    (tmp_path / "secret.png").chmod(0)
    assert reason(tmp_path / "secret.png", preprocess) == "unreadable: permission denied"


def test_broken_symlink_missing_and_folder(tmp_path, preprocess):
    os.symlink(tmp_path / "gone.jpg", tmp_path / "link.jpg")
    assert reason(tmp_path / "link.jpg", preprocess) == "broken symlink"
    assert reason(tmp_path / "never.jpg", preprocess) == "no such file"
    (tmp_path / "dir.jpg").mkdir()
    assert reason(tmp_path / "dir.jpg", preprocess) == "is a folder, not an image"


# --- geometry ---------------------------------------------------------------------------------

def test_exif_orientation_6_matches_upright_twin(tmp_path):
    pre = PreprocessConfig(image_size=64, resize_size=64)
    upright = smooth_image(120, 80)  # landscape [80, 120, 3]
    save(tmp_path / "upright.jpg", upright, quality=95)
    # Orientation 6: the viewer turns the stored pixels 90 degrees clockwise, so store them turned
    # 90 degrees counter-clockwise.
    stored = np.rot90(upright, k=1)  # [120, 80, 3]
    exif = Image.Exif()
    exif[0x0112] = 6
    save(tmp_path / "rotated.jpg", stored, quality=95, exif=exif.tobytes())
    a = decode(tmp_path / "upright.jpg", pre).astype(int)
    b = decode(tmp_path / "rotated.jpg", pre).astype(int)
    assert np.abs(a - b).mean() < 2.0
    unrotated = decode_module.resize_crop(Image.open(tmp_path / "rotated.jpg").convert("RGB"), pre).astype(int)
    assert np.abs(a - unrotated).mean() > 20  # the check can tell orientations apart


def test_resize_crop_matches_torchvision():
    tv = pytest.importorskip("torchvision.transforms", reason="torchvision not importable here")
    pre = PreprocessConfig(image_size=24, resize_size=27, interpolation="bicubic")
    im = Image.fromarray(smooth_image(61, 45))
    ours = decode_module.resize_crop(im, pre)
    theirs = np.asarray(tv.CenterCrop(24)(tv.Resize(27, interpolation=tv.InterpolationMode.BICUBIC)(im)))
    np.testing.assert_array_equal(ours, theirs)


def test_exact_decode_is_pixel_identical_to_pil_and_torchvision(tmp_path, monkeypatch):
    # What a user's own loop computes: PIL open + convert, torchvision Resize + CenterCrop.
    tv = pytest.importorskip("torchvision.transforms", reason="torchvision not importable here")
    pre = PreprocessConfig(image_size=64, resize_size=72, interpolation="bicubic")
    save(tmp_path / "large.jpg", smooth_image(1600, 1200, seed=5), quality=92)
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", lambda *a: pytest.fail("exact decode drafted"))
    ours = decode(tmp_path / "large.jpg", pre, FULL)
    with Image.open(tmp_path / "large.jpg") as im:
        theirs = np.asarray(tv.CenterCrop(64)(tv.Resize(72, interpolation=tv.InterpolationMode.BICUBIC)(im.convert("RGB"))))
    np.testing.assert_array_equal(ours, theirs)


def test_decode_options_from_cli_values():
    assert DecodeOptions.from_options() == DecodeOptions(max_pixels=DEFAULT_MAX_PIXELS, mode="fast")
    assert DecodeOptions.from_options("exact", 1000) == DecodeOptions(max_pixels=1000, mode="exact")
    assert DecodeOptions.from_options("exact").mode == "exact" and DecodeOptions().mode == "fast"
    with pytest.raises(SigrlError, match="--decode must be one of fast, exact, checked"):
        DecodeOptions.from_options("quick")
    with pytest.raises(SigrlError, match="--max-pixels must be a positive"):
        DecodeOptions.from_options("fast", 0)


def test_draft_decode_close_to_full_decode(tmp_path, monkeypatch):
    pre = PreprocessConfig(image_size=64, resize_size=72)
    save(tmp_path / "large.jpg", smooth_image(1600, 1200, seed=3), quality=92)
    scales = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = real_draft(self, mode, size)
        scales.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    fast = decode(tmp_path / "large.jpg", pre).astype(int)
    assert scales == [(200, 150)]  # decoded at 1/8 scale; shorter side 150 >= 2 x 72
    full = decode(tmp_path / "large.jpg", pre, FULL).astype(int)
    assert len(scales) == 1  # the reference never drafts
    assert np.abs(fast - full).mean() < 1.5


# --- modes ------------------------------------------------------------------------------------

def halves(left, right, mode: str, size: int = 40) -> Image.Image:
    im = Image.new(mode, (size, size), left)
    im.paste(right, (size // 2, 0, size, size))
    return im


def test_palette_with_transparency_goes_on_white(tmp_path):
    im = Image.new("P", (40, 40), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.paste(1, (20, 0, 40, 40))
    im.save(tmp_path / "p.png", transparency=0)
    out = decode(tmp_path / "p.png", EXACT)
    assert (out[:, :20] == 255).all()  # transparent black -> white page, not black
    assert (out[:, 20:] == [255, 0, 0]).all()


def test_gray_alpha(tmp_path):
    im = halves((100, 0), (100, 128), "LA")
    im.paste((100, 255), (0, 0, 10, 40))
    im.save(tmp_path / "la.png")
    out = decode(tmp_path / "la.png", EXACT).astype(int)
    assert (out[:, :10] == 100).all()
    assert (out[:, 10:20] == 255).all()
    expected = round(100 * 128 / 255 + 255 * 127 / 255)
    assert np.abs(out[:, 20:] - expected).max() <= 1


def test_rgba(tmp_path):
    halves((0, 0, 255, 128), (10, 200, 30, 255), "RGBA").save(tmp_path / "rgba.png")
    out = decode(tmp_path / "rgba.png", EXACT).astype(int)
    assert np.abs(out[:, :20] - [127, 127, 255]).max() <= 1
    assert (out[:, 20:] == [10, 200, 30]).all()


def test_cmyk_tiff_and_jpeg(tmp_path):
    halves((0, 255, 0, 0), (0, 0, 0, 255), "CMYK").save(tmp_path / "c.tif")
    out = decode(tmp_path / "c.tif", EXACT)
    assert (out[:, :20] == [255, 0, 255]).all()  # pure magenta
    assert (out[:, 20:] == 0).all()  # full black ink
    halves((0, 255, 0, 0), (0, 0, 0, 255), "CMYK").save(tmp_path / "c.jpg", quality=95)
    out = decode(tmp_path / "c.jpg", EXACT).astype(int)
    assert np.abs(out[:, :16] - [255, 0, 255]).mean() < 6
    assert out[:, 24:].mean() < 6


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    values = np.zeros((40, 40), dtype=np.uint16)
    values[:, :10], values[:, 10:20], values[:, 20:30], values[:, 30:] = 65535, 32768, 2570, 0
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = decode(tmp_path / "g16.png", EXACT)
    assert [int(out[0, c, 0]) for c in (0, 10, 20, 30)] == [255, 128, 10, 0]
    assert (out == out[..., :1]).all()  # gray stays gray


def test_gray_and_gif_first_frame(tmp_path):
    Image.new("L", (40, 40), 77).save(tmp_path / "g.png")
    assert (decode(tmp_path / "g.png", EXACT) == 77).all()
    frames = [Image.new("RGB", (40, 40), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    out = decode(tmp_path / "anim.gif", EXACT)
    assert (out == [255, 0, 0]).all()


def test_output_shape_and_dtype_for_portrait(tmp_path, preprocess):
    save(tmp_path / "tall.png", smooth_image(30, 90))
    out = decode(tmp_path / "tall.png", preprocess)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_mpo_camera_jpeg_is_drafted_too(tmp_path, monkeypatch):
    pre = PreprocessConfig(image_size=64, resize_size=64)
    drafted = []
    real_draft = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", lambda self, *a: drafted.append(real_draft(self, *a)))
    frames = [Image.fromarray(smooth_image(1024, 768, seed=s)) for s in (1, 2)]
    frames[0].save(tmp_path / "cam.jpg", format="MPO", save_all=True, append_images=frames[1:], quality=92)
    assert Image.open(tmp_path / "cam.jpg").format == "MPO"
    fast = decode(tmp_path / "cam.jpg", pre).astype(int)
    assert len(drafted) == 1 and drafted[0] is not None  # the DCT-domain downscale took effect
    full = decode(tmp_path / "cam.jpg", pre, FULL).astype(int)
    assert np.abs(fast - full).mean() < 1.5
    assert np.abs(fast - decode_module.resize_crop(frames[0], pre)).mean() < 3  # the first frame


def test_formats_outside_the_list_are_not_decoded(tmp_path, preprocess):
    Image.fromarray(smooth_image(40, 40)).save(tmp_path / "really.jpg", format="PPM")
    assert reason(tmp_path / "really.jpg", preprocess) == "not an image"
