"""Each image mode is either coded correctly or refused with a clear error (see licodec/io.py)."""

import numpy as np
import pytest
import torch
from PIL import Image

from licodec.errors import ImageError
from licodec.io import read_image, read_image_bytes, to_pil, write_atomic


def _rgb(height=5, width=7):
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_rgb_pil_numpy_and_tensor_agree():
    array = _rgb()
    from_pil, c1 = read_image(Image.fromarray(array))
    from_numpy, c2 = read_image(array)
    from_tensor, c3 = read_image(torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    assert c1 == c2 == c3 == 3
    assert torch.equal(from_pil, from_numpy) and torch.equal(from_pil, from_tensor)
    assert from_pil.shape == (1, 3, 5, 7)
    assert np.array_equal(np.asarray(to_pil(from_pil)), array)


def test_grayscale_is_coded_as_gray_and_given_back_gray():
    gray = np.arange(35, dtype=np.uint8).reshape(5, 7)
    x, channels = read_image(Image.fromarray(gray, "L"))
    assert channels == 1
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    back = to_pil(x, channels)
    assert back.mode == "L" and np.array_equal(np.asarray(back), gray)
    assert read_image(gray)[1] == 1


def test_palette_bilevel_and_cmyk_are_converted():
    array = _rgb()
    palette = Image.fromarray(array).quantize(16)
    x, channels = read_image(palette)
    assert channels == 3 and np.array_equal(np.asarray(to_pil(x)), np.asarray(palette.convert("RGB")))
    assert read_image(Image.fromarray(array).convert("1"))[1] == 1
    cmyk = Image.fromarray(array).convert("CMYK")
    x, channels = read_image(cmyk)
    assert channels == 3 and np.array_equal(np.asarray(to_pil(x)), np.asarray(cmyk.convert("RGB")))


def test_opaque_alpha_is_dropped_and_transparency_refused():
    rgba = np.concatenate([_rgb(), np.full((5, 7, 1), 255, np.uint8)], axis=2)
    x, channels = read_image(Image.fromarray(rgba, "RGBA"))
    assert channels == 3 and np.array_equal(np.asarray(to_pil(x)), rgba[..., :3])
    rgba[0, 0, 3] = 10
    with pytest.raises(ImageError, match="transparency"):
        read_image(Image.fromarray(rgba, "RGBA"))
    with pytest.raises(ImageError, match="transparency"):
        read_image(rgba)


def test_high_bit_depth_is_refused():
    with pytest.raises(ImageError, match="16-bit"):
        read_image(Image.new("I;16", (4, 4)))
    with pytest.raises(ImageError, match="32-bit"):
        read_image(Image.new("F", (4, 4)))
    with pytest.raises(ImageError, match="uint8"):
        read_image(np.zeros((4, 4, 3), np.uint16))


def test_bad_files(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ImageError, match="not an image"):
        read_image(tmp_path / "junk.png")
    buffer = __import__("io").BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buffer, "PNG")
    with pytest.raises(ImageError):
        read_image_bytes(buffer.getvalue()[:100], "cut.png")


def test_write_atomic_never_clobbers(tmp_path):
    target = tmp_path / "out.bin"
    write_atomic(target, b"one")
    with pytest.raises(ImageError, match="exists"):
        write_atomic(target, b"two")
    assert target.read_bytes() == b"one"
    write_atomic(target, b"two", overwrite=True)
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    with pytest.raises(ImageError, match="no such directory"):
        write_atomic(tmp_path / "nowhere" / "x.bin", b"")
