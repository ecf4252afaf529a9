import torch

from licodec.nn.gdn import GDN
from licodec.nn.ops import NonNegativeParameter, lower_bound


def test_gdn_matches_its_formula():
    torch.manual_seed(0)
    gdn = GDN(4)
    with torch.no_grad():
        gdn.gamma.raw.add_(torch.rand(4, 4) * 0.1)
    x = torch.randn(2, 4, 3, 5)
    beta, gamma = gdn.beta(), gdn.gamma()
    norm = torch.sqrt(beta.view(1, 4, 1, 1) + torch.einsum("ij,njhw->nihw", gamma, x**2))
    assert torch.allclose(gdn(x), x / norm, atol=1e-6)
    igdn = GDN(4, inverse=True)
    igdn.load_state_dict(gdn.state_dict())
    assert torch.allclose(igdn(x), x * norm, atol=1e-5)


def test_reparametrized_values_stay_non_negative():
    parameter = NonNegativeParameter(torch.tensor([0.5, 1e-3]), minimum=1e-6)
    with torch.no_grad():
        parameter.raw.fill_(-3.0)
    assert (parameter() >= 1e-6 - 1e-12).all()


def test_lower_bound_lets_gradients_pull_back_up():
    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    lower_bound(x, 0.0).sum().neg().backward()  # gradient -1: increasing x lowers the loss
    assert x.grad.tolist() == [-1.0, -1.0]
    x.grad = None
    lower_bound(x, 0.0).sum().backward()  # gradient +1 at the bounded element must not push it lower
    assert x.grad.tolist() == [0.0, 1.0]


def test_inference_path_matches_training_path():
    torch.manual_seed(1)
    for inverse in (False, True):
        gdn = GDN(6, inverse=inverse)
        with torch.no_grad():
            gdn.gamma.raw.add_(torch.rand(6, 6) * 0.2)
        x = torch.randn(2, 6, 5, 7)
        expected = gdn(x)
        with torch.no_grad():
            fast = gdn(x.contiguous(memory_format=torch.channels_last))
        assert fast.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(fast, expected, atol=1e-5, rtol=1e-5)
