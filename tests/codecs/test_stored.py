"""Files written before issue 18's refactoring (one per shipped codec, kodim23's top-left 96x128 crop at quality 1)
still decode, to the PSNR they decoded to then."""

import json
from pathlib import Path

import pytest

from licodec.api import decompress_tensor
from licodec.eval.metrics import psnr
from licodec.io import read_image
from tests.conftest import kodak_image

STORED = Path(__file__).parent / "stored"
EXPECTED = json.loads((STORED / "expected.json").read_text())["psnr"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_stored_file_decodes_to_its_recorded_quality(name):
    x, _ = read_image(kodak_image(23))
    x_hat, header = decompress_tensor((STORED / f"{name}.lic").read_bytes())
    assert header.codec == name and x_hat.shape == (1, 3, 96, 128)
    assert psnr(x_hat, x[..., :96, :128]) == pytest.approx(EXPECTED[name], abs=0.01)
