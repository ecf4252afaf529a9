"""licodec.pillow through Pillow's own API: registered_extensions, open, load, save."""

import io

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import licodec
import licodec.pillow  # noqa: F401  (registers the format)


@pytest.fixture
def photo():
    y, x = np.mgrid[0:40, 0:72]
    array = np.stack([(x * 3) % 256, (y * 5) % 256, (x * y) % 256], axis=2).astype(np.uint8)
    return Image.fromarray(array)


def test_registered():
    assert Image.registered_extensions()[".lic"] == "LIC"
    assert Image.MIME["LIC"] == "image/x-licodec"


def test_save_then_open_matches_the_library(photo, tmp_path):
    path = tmp_path / "photo.lic"
    photo.save(path, quality=2)  # the format from the suffix
    assert path.read_bytes() == licodec.compress(photo, quality=2)
    with Image.open(path) as image:
        assert image.format == "LIC" and image.size == (72, 40) and image.mode == "RGB"
        assert image.info["codec"] == "balle2018-hyperprior" and image.info["quality"] == 2
        image.load()
        expected = licodec.decompress(path.read_bytes())
        assert np.array_equal(np.asarray(image), np.asarray(expected))


def test_save_options_and_file_objects(photo):
    buffer = io.BytesIO()
    photo.convert("L").save(buffer, format="LIC", codec="balle2017-factorized", quality=1)
    buffer.seek(0)
    with Image.open(buffer) as image:
        assert image.mode == "L" and image.info["codec"] == "balle2017-factorized"
        assert image.convert("RGB").size == (72, 40)


def test_refused_image_raises_licodec_error(photo):
    transparent = photo.convert("RGBA")
    transparent.putpixel((0, 0), (0, 0, 0, 0))
    with pytest.raises(licodec.ImageError):
        transparent.save(io.BytesIO(), format="LIC")


def test_damaged_file_is_not_identified(photo):
    data = bytearray(licodec.compress(photo, quality=1))
    data[10] ^= 0xFF  # inside the header: its checksum no longer matches
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(bytes(data)))


def test_metadata_passes_through_open_and_save(photo, tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo.info["icc_profile"] = icc
    buffer = io.BytesIO()
    photo.save(buffer, format="LIC", quality=1)  # the image's profile goes into the file
    buffer.seek(0)
    with Image.open(buffer) as image:
        assert image.info["icc_profile"] == icc and "exif" not in image.info
        image.save(tmp_path / "back.png")  # and Pillow's PNG writer finds it where Pillow's readers put it
    with Image.open(tmp_path / "back.png") as png:
        assert png.info["icc_profile"] == icc
    stripped = io.BytesIO()
    photo.save(stripped, format="LIC", quality=1, strip=True)
    stripped.seek(0)
    with Image.open(stripped) as image:
        assert "icc_profile" not in image.info
