import numpy as np
import torch
from scipy.stats import norm

from licodec.entropy.gaussian import GaussianConditional


def test_likelihood_is_the_box_convolved_normal():
    model = GaussianConditional()
    y = torch.tensor([0.0, 1.0, -2.0, 3.0])
    scales = torch.tensor([0.5, 1.0, 2.0, 4.0])
    means = torch.tensor([0.2, -0.3, 0.0, 1.0])
    got = model.likelihood(y, scales, means).double().numpy()
    expected = norm.cdf((y - means + 0.5) / scales) - norm.cdf((y - means - 0.5) / scales)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_tables_cover_the_tails_and_index_picks_the_nearest_level():
    model = GaussianConditional(levels=16)
    model.update()
    tables = model.tables
    assert tables.count == 16
    # Wider scales get wider tables.
    assert (np.diff(tables.lengths) >= 0).all()
    scales = model.scale_table
    fixed = torch.round(scales * 1024).long()
    assert torch.equal(model.index(fixed, 10), torch.arange(16))
    # Just above the geometric midpoint between two levels goes up, just below stays.
    mid = torch.sqrt(scales[3] * scales[4])
    assert model.index(torch.tensor([int(mid * 1024) + 2]), 10).item() == 4
    assert model.index(torch.tensor([int(mid * 1024) - 2]), 10).item() == 3
    assert model.index(torch.tensor([0, 10**9]), 10).tolist() == [0, 15]


def test_gaussian_priors_pick_the_nearest_table_and_code_on_the_integer_grid():
    import math

    import torch

    from licodec.entropy.gaussian import GaussianPriors

    priors = GaussianPriors(2, 5)
    with torch.no_grad():
        priors.log_scales.copy_(torch.log(torch.tensor([[0.2, 1.0, 3.0, 10.0, 50.0]] * 2)))
    priors.update()
    table = priors.gaussian.scale_table
    for c, scale in enumerate([0.2, 1.0, 3.0, 10.0, 50.0]):
        nearest = int(torch.argmin(torch.abs(torch.log(table) - math.log(scale))))
        assert int(priors.index[0, c]) == nearest
    z = torch.tensor([-2.6, 0.4, 1.5, 7.2, -30.1]).view(1, 5, 1, 1)
    symbols, index = priors.symbols(0.4, z)
    assert symbols.ravel().tolist() == [-3, 0, 2, 7, -30]
    assert index.ravel().tolist() == priors.index[0].tolist()
    _, likelihood = priors(z, torch.tensor([1]), "round")
    assert ((likelihood > 0) & (likelihood <= 1)).all()
