import torch
from torch import nn

from licodec.nn.blocks import conv, deconv
from licodec.nn.integer import IntegerConvNet


def _net():
    torch.manual_seed(0)
    return nn.Sequential(deconv(8, 8), nn.ReLU(), deconv(8, 12), nn.ReLU(), conv(12, 6, 3, 1))


def test_integer_net_tracks_the_float_net():
    net = _net()
    integer = IntegerConvNet(net)
    z = torch.randint(-5, 6, (1, 8, 3, 4)).float()
    expected = net(z)
    got = integer(integer.to_fixed(z)).double() / (1 << integer.fraction_bits)
    assert got.dtype == torch.float64
    assert torch.allclose(got.float(), expected, atol=2e-2, rtol=1e-2)


def test_integer_net_is_identical_across_thread_counts():
    integer = IntegerConvNet(_net())
    z = integer.to_fixed(torch.randint(-20, 21, (1, 8, 9, 13)).float())
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = integer(z)
        torch.set_num_threads(2)
        two = integer(z)
    finally:
        torch.set_num_threads(threads)
    assert one.dtype == torch.int64
    assert torch.equal(one, two)


def test_integer_net_output_is_a_function_of_integers_only():
    """Two differently ordered evaluations (whole vs. split along width) agree on the overlap exactly."""
    integer = IntegerConvNet(nn.Sequential(conv(8, 8, 3, 1), nn.ReLU(), conv(8, 4, 3, 1)))
    z = integer.to_fixed(torch.randn(1, 8, 6, 20) * 10)
    whole = integer(z)
    left = integer(z[..., :12])
    assert torch.equal(whole[..., :10], left[..., :10])


def test_integer_leaky_relu_tracks_the_float_net_and_is_exact_integer_arithmetic():
    torch.manual_seed(1)
    net = nn.Sequential(deconv(8, 8), nn.LeakyReLU(0.01), conv(8, 6, 3, 1), nn.LeakyReLU(0.2))
    integer = IntegerConvNet(net)
    z = torch.randint(-5, 6, (1, 8, 3, 4)).float()
    got = integer(integer.to_fixed(z)).double() / (1 << integer.fraction_bits)
    assert torch.allclose(got.float(), net(z), atol=2e-2, rtol=1e-2)
    assert (got < 0).any()  # the negative side is kept, scaled
    negative = torch.tensor([[-1000, -1, 0, 7]]).view(1, 4, 1, 1)
    leaky = IntegerConvNet(nn.LeakyReLU(0.25))
    assert leaky(negative).flatten().tolist() == [-250, 0, 0, 7]  # -0.25 rounds half up to 0
