"""licodec/nn/resample.py: bilinear upsampling that matches F.interpolate and is identical at any thread count."""

import pytest
import torch
import torch.nn.functional as F

from licodec.nn.resample import upsample_bilinear


@pytest.mark.parametrize("factor", [2, 4])
@pytest.mark.parametrize("shape", [(1, 3, 96, 128), (2, 3, 25, 37), (1, 1, 1, 5)])
def test_matches_interpolate_and_ignores_thread_count(shape, factor):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    reference = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = upsample_bilinear(x.contiguous(memory_format=torch.channels_last), factor)
        torch.set_num_threads(2)
        two = upsample_bilinear(x, factor)
    finally:
        torch.set_num_threads(saved)
    assert one.shape == reference.shape
    assert torch.allclose(one, reference, atol=1e-6)
    assert torch.equal(one, two)


def test_gradient_flows():
    x = torch.rand(1, 2, 4, 6, requires_grad=True)
    upsample_bilinear(x, 2).sum().backward()
    assert torch.allclose(x.grad.sum(), torch.tensor(4.0 * x.numel()))
