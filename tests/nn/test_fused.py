"""The chunked per-pixel MLP against the plain autograd expression."""

import pytest
import torch

from licodec.nn import fused


@pytest.mark.parametrize("columns", [1, 100, 3 * 64 + 5])
def test_pixel_mlp_equals_autograd(monkeypatch, columns):
    monkeypatch.setattr(fused, "CHUNK", 64)  # several chunks and a ragged last one
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_(True)

    f, w1, b1, w2, b2 = tensor(7, columns), tensor(40, 7), tensor(40), tensor(3, 40), tensor(3)
    grad_out = torch.randn(3, columns, generator=generator, dtype=torch.float64)
    expected = torch.addmm(b2[:, None], w2, torch.relu(torch.addmm(b1[:, None], w1, f)))
    got = fused.pixel_mlp(f, w1, b1, w2, b2)
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-12)
    for want, have in zip(torch.autograd.grad(expected, (f, w1, b1, w2, b2), grad_out),
                          torch.autograd.grad(got, (f, w1, b1, w2, b2), grad_out)):
        assert torch.allclose(have, want, rtol=1e-10, atol=1e-10)
