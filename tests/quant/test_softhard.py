"""Soft-to-hard quantization: hard nearest centers in value, soft gradients in training."""

import torch

from licodec.quant.softhard import SoftToHard


def test_values_are_the_nearest_centers():
    quantizer = SoftToHard(levels=5).eval()
    z = torch.tensor([-3.0, -1.2, -0.1, 0.4, 0.6, 2.5]).view(1, 6, 1, 1)
    z_hat, indices = quantizer(z)
    centers = quantizer.centers.detach().flatten()
    expected = torch.stack([centers[torch.argmin(torch.abs(centers - v))] for v in z.flatten()])
    assert torch.equal(z_hat.flatten(), expected)
    assert torch.equal(quantizer.dequantize(indices), z_hat)


def test_training_gradient_reaches_the_input_and_the_centers():
    quantizer = SoftToHard(levels=4).train()
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    z_hat, indices = quantizer(z)
    assert torch.equal(z_hat.detach(), quantizer.dequantize(indices).detach())
    (z_hat**2).sum().backward()
    assert z.grad.abs().sum() > 0 and quantizer.centers.grad.abs().sum() > 0


def test_a_larger_sigma_makes_the_soft_assignment_harder():
    z = torch.randn(1, 4, 3, 3)
    gaps = []
    for sigma in (0.5, 5.0, 50.0):
        quantizer = SoftToHard(levels=6, sigma=sigma).eval()
        gaps.append((quantizer.soft(z) - quantizer(z)[0]).abs().mean())
    assert gaps[0] > gaps[1] > gaps[2]


def test_vector_quantization_groups_channels():
    quantizer = SoftToHard(levels=8, dim=2).eval()
    z = torch.randn(1, 6, 5, 5)
    z_hat, indices = quantizer(z)
    assert indices.shape == (1, 3, 5, 5) and z_hat.shape == z.shape
    pairs = z.view(1, 3, 2, 5, 5).permute(0, 1, 3, 4, 2).reshape(-1, 2)
    nearest = torch.cdist(pairs, quantizer.centers.detach()).argmin(1)
    assert torch.equal(indices.flatten(), nearest)
