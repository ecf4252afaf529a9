"""licodec.formats: every listed suffix writes a file of its format; lossless ones keep every pixel."""

import io

import imagecodecs
import numpy as np
import pillow_heif
import pytest
from PIL import Image

from licodec import formats
from licodec.errors import ImageError

pillow_heif.register_heif_opener()


def _photo(mode):
    y, x = np.mgrid[0:48, 0:64]
    array = np.stack([(x * 4) % 256, (y * 5) % 256, (x * y) % 256], axis=2).astype(np.uint8)
    return Image.fromarray(array).convert(mode)


@pytest.mark.parametrize("image_format", sorted(set(formats.SUFFIXES.values())))
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_written_and_read_back(image_format, mode):
    image = _photo(mode)
    data = formats.encode(image, image_format)
    if image_format == "JXL":
        back = imagecodecs.jpegxl_decode(data)
    else:
        with Image.open(io.BytesIO(data)) as opened:
            assert opened.format == image_format
            back = np.asarray(opened.convert(mode))
    reference = np.asarray(image).astype(float)
    error = np.abs(np.asarray(back).astype(float) - reference)
    if image_format in formats.LOSSLESS:
        assert error.max() == 0
    else:
        assert 10 * np.log10(255**2 / (error**2).mean()) > 30


def test_suffixes():
    assert formats.output_format("a/b.HEIC") == "HEIF" and formats.output_format(".jxl") == "JXL"
    for bad in ("x.xyz", "noext"):
        with pytest.raises(ImageError, match="suffix"):
            formats.output_format(bad)
