import torch

from licodec.entropy.factorized import FactorizedDensity


def test_likelihoods_form_a_distribution_over_integers():
    torch.manual_seed(0)
    density = FactorizedDensity(3)
    values = torch.arange(-400, 401, dtype=torch.float32).view(1, 1, -1, 1).expand(1, 3, -1, 1).contiguous()
    probs = density.likelihood(values)
    assert torch.allclose(probs.sum(dim=2), torch.ones(1, 3, 1), atol=1e-4)


def test_aux_loss_moves_only_the_quantiles_toward_the_tails():
    torch.manual_seed(0)
    density = FactorizedDensity(2)
    optimizer = torch.optim.Adam([density.quantiles], lr=0.5)
    before = density.aux_loss().item()
    for _ in range(400):
        optimizer.zero_grad()
        loss = density.aux_loss()
        loss.backward()
        assert all(p.grad is None for name, p in density.named_parameters() if name != "quantiles")
        optimizer.step()
    assert density.aux_loss().item() < 0.5 * before


def test_update_freezes_tables_that_match_the_density():
    torch.manual_seed(0)
    density = FactorizedDensity(2)
    density.update()
    tables = density.tables
    assert tables.count == 2
    for c in range(2):
        length = int(tables.lengths[c])
        probs = tables.freqs[c, :length] / 2**16
        support = torch.arange(length, dtype=torch.float32) + int(tables.offsets[c]) + density.medians[c]
        expected = density.likelihood(support.view(1, 1, -1, 1).expand(1, 2, -1, 1).contiguous())[0, c, :, 0]
        assert abs(probs - expected.detach().numpy()).max() < 1e-3
