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


def png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG (gray, gray+alpha, RGB or RGBA by the channel count) of a HxWxC uint16 array, written by hand:
    Pillow cannot write 16-bit colour."""
    import struct
    import zlib

    height, width, channels = array.shape
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16_bit_images_are_refused_unless_reduced_with_a_warning(channels):
    from licodec.errors import LicodecWarning

    array = np.full((6, 5, channels), 40000, np.uint16)
    if channels in (2, 4):
        array[..., -1] = 65535  # opaque
    data = png16(array)
    with pytest.raises(ImageError, match="16-bit.*--reduce-to-8-bit"):
        read_image_bytes(data, "deep.png")
    with pytest.warns(LicodecWarning, match="8 bits"):
        x, given_back = read_image_bytes(data, "deep.png", reduce_to_8_bit=True)
    assert given_back == (1 if channels <= 2 else 3)  # gray+alpha comes back gray, like 8-bit LA
    assert torch.allclose(x * 255, torch.full_like(x, round(40000 / 257)), atol=1)


def test_gray_alpha_is_treated_like_rgba():
    gray_alpha = np.zeros((4, 6, 2), np.uint8)
    gray_alpha[..., 0] = 90
    gray_alpha[..., 1] = 255
    x, channels = read_image(gray_alpha)
    assert channels == 1 and torch.allclose(x * 255, torch.full_like(x, 90.0))
    assert read_image(Image.fromarray(gray_alpha, "LA"))[1] == 1
    gray_alpha[0, 0, 1] = 10
    with pytest.raises(ImageError, match="transparency"):
        read_image(gray_alpha)


@pytest.mark.parametrize("image_format", ["GIF", "PNG", "WEBP"])
def test_animated_images_are_refused_unless_first_frame(image_format):
    import io

    from licodec.errors import LicodecWarning

    frames = [Image.new("RGB", (16, 12), (80 * k, 40, 0)) for k in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, image_format, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="animated.*--first-frame"):
        read_image_bytes(buffer.getvalue(), "moving")
    with pytest.warns(LicodecWarning, match="first frame"):
        x, _ = read_image_bytes(buffer.getvalue(), "moving", first_frame=True)
    assert x.shape == (1, 3, 12, 16)


def _tagged_jpeg(orientation: int) -> tuple[bytes, bytes, bytes]:
    """A 64x40 JPEG with a white band along its top, an EXIF orientation, a camera name, ICC and XMP."""
    import io

    from PIL import ImageCms

    array = np.zeros((40, 64, 3), np.uint8)
    array[:10] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", exif=exif.tobytes(), icc_profile=icc, xmp=xmp, quality=95)
    return buffer.getvalue(), icc, xmp


def test_exif_orientation_is_applied_and_metadata_kept():
    from licodec.io import read_image_with_metadata

    data, icc, xmp = _tagged_jpeg(orientation=6)  # 6: the camera was turned; view it rotated 90 degrees clockwise
    x, _, metadata = read_image_with_metadata(data)
    assert x.shape == (1, 3, 64, 40)
    assert x[0, :, :, -10:].mean() > 0.9 and x[0, :, :, :20].mean() < 0.1  # the top band is now on the right
    assert metadata.icc == icc and metadata.xmp == xmp
    exif = Image.Exif()
    exif.load(metadata.exif)
    assert exif.get(0x010F) == "TestCam" and exif.get(0x0112, 1) == 1


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_metadata_is_written_back(suffix):
    import io

    from licodec.formats import encode, output_format
    from licodec.io import read_image_with_metadata

    data, icc, xmp = _tagged_jpeg(orientation=1)
    x, channels, metadata = read_image_with_metadata(data)
    back = Image.open(io.BytesIO(encode(to_pil(x, channels), output_format(suffix), metadata)))
    assert back.info.get("icc_profile") == icc
    assert back.getexif().get(0x010F) == "TestCam"
    assert xmp in (back.info.get("xmp") or b"") or xmp.decode() in str(back.info.get("xmp", ""))


def test_a_format_without_metadata_says_what_it_drops():
    from licodec.errors import LicodecWarning
    from licodec.formats import encode
    from licodec.io import Metadata

    with pytest.warns(LicodecWarning, match="ICC profile"):
        encode(Image.new("RGB", (4, 4)), "BMP", Metadata(icc=b"profile"))


def test_nan_tensor_is_refused():
    x = torch.rand(1, 3, 4, 4)
    x[0, 1, 2, 2] = float("nan")
    with pytest.raises(ImageError, match="NaN"):
        read_image(x)


def test_outputs_get_the_umask_and_force_keeps_the_mode(tmp_path):
    import os
    import stat

    saved = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.lic", b"a")
        assert stat.S_IMODE(os.stat(tmp_path / "new.lic").st_mode) == 0o640
    finally:
        os.umask(saved)
    os.chmod(tmp_path / "new.lic", 0o604)
    write_atomic(tmp_path / "new.lic", b"b", overwrite=True)
    assert stat.S_IMODE(os.stat(tmp_path / "new.lic").st_mode) == 0o604
    assert (tmp_path / "new.lic").read_bytes() == b"b"


def test_a_temporary_file_that_cannot_be_made_is_an_image_error(tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ImageError, match="cannot write"):
        write_atomic(tmp_path / "x.lic", b"data")
    assert list(tmp_path.iterdir()) == []
