"""Context masks and decoding schedules: no symbol may see itself or anything decoded after it."""

import pytest
import torch

from licodec.entropy.context import MaskedConv2d, anchors, context_mask, schedule
from licodec.nn.integer import IntegerConvNet


def _step_of(kind, height, width):
    order = torch.full((height, width), -1)
    for k, (rows, cols, _) in enumerate(schedule(kind, height, width)):
        assert (order[rows, cols] == -1).all(), "a position is visited twice"
        order[rows, cols] = k
    assert (order >= 0).all(), "a position is never visited"
    return order


@pytest.mark.parametrize("kind", ["causal", "checkerboard"])
@pytest.mark.parametrize("size", [(1, 1), (3, 7), (9, 4), (12, 17)])
def test_every_visible_neighbour_is_decoded_in_an_earlier_step(kind, size):
    height, width = size
    order = _step_of(kind, height, width)
    sees = torch.zeros(height, width, dtype=torch.bool)
    for rows, cols, sees_context in schedule(kind, height, width):
        sees[rows, cols] = sees_context
    mask = context_mask(kind, 5)
    for i in range(height):
        for j in range(width):
            if not sees[i, j]:
                continue
            for a, b in torch.nonzero(mask).tolist():
                r, c = i + a - 2, j + b - 2
                if 0 <= r < height and 0 <= c < width:
                    assert order[r, c] < order[i, j], (kind, (i, j), (r, c))


def test_causal_mask_is_pixelcnn_mask_a():
    mask = context_mask("causal", 5)
    assert mask[2, 2] == 0 and mask[2, 3:].sum() == 0 and mask[3:].sum() == 0
    assert mask[:2].sum() == 10 and mask[2, :2].sum() == 2


@pytest.mark.parametrize("kind", ["causal", "checkerboard"])
def test_masked_convolution_ignores_the_symbol_itself_and_later_ones(kind):
    torch.manual_seed(0)
    conv = MaskedConv2d(3, 4, 5, kind)
    x = torch.randn(1, 3, 8, 9)
    base = conv(x)
    order = _step_of(kind, 8, 9)
    for i, j in [(0, 0), (3, 4), (7, 8), (5, 0)]:
        changed = x.clone()
        changed[0, :, i, j] += 10
        moved = (conv(changed) - base).abs().amax(dim=(0, 1)) > 0
        # Only positions decoded after (i, j) may change.
        assert (order[moved] > order[i, j]).all(), (kind, i, j)


def test_wavefronts_are_far_fewer_than_positions():
    assert len(schedule("causal", 32, 48)) == 3 * 31 + 47 + 1
    assert len(schedule("checkerboard", 32, 48)) == 2


def test_anchors_alternate():
    a = anchors(3, 3)
    assert a[0, 0] and not a[0, 1] and a[1, 1] and a.sum() == 5


@pytest.mark.parametrize("kind", ["causal", "checkerboard"])
def test_integer_evaluation_at_positions_equals_the_whole_convolution(kind):
    torch.manual_seed(1)
    conv = MaskedConv2d(6, 5, 5, kind)
    net = IntegerConvNet(conv)
    x = torch.randint(-3000, 3000, (1, 6, 7, 10))
    full = net(x)
    rows, cols = torch.nonzero(torch.ones(7, 10), as_tuple=True)
    assert torch.equal(net.at(x, rows, cols), full[0, :, rows, cols].T)


def test_3d_wavefronts_respect_every_tap_of_a_causal_stack():
    from licodec.entropy.context import causal_mask_3d, schedule_3d

    depth, height, width = 4, 5, 6
    order = torch.full((depth, height, width), -1)
    for k, (d, i, j) in enumerate(schedule_3d(depth, height, width)):
        assert (order[d, i, j] == -1).all()
        order[d, i, j] = k
    assert (order >= 0).all()
    for include_centre in (False, True):
        taps = torch.nonzero(causal_mask_3d(3, include_centre)) - 1
        for d in range(depth):
            for i in range(height):
                for j in range(width):
                    for a, b, c in taps.tolist():
                        r = (d + a, i + b, j + c)
                        if all(0 <= v < n for v, n in zip(r, (depth, height, width))):
                            if (a, b, c) == (0, 0, 0):
                                continue
                            assert order[r] < order[d, i, j]


def test_masked_3d_convolution_sees_only_earlier_voxels():
    from licodec.entropy.context import MaskedConv3d

    torch.manual_seed(0)
    conv = MaskedConv3d(1, 2, 3)
    x = torch.randn(1, 1, 3, 4, 4)
    base = conv(x)
    changed = x.clone()
    changed[0, 0, 1, 2, 2] += 5
    moved = torch.nonzero((conv(changed) - base).abs().amax(dim=(0, 1)) > 0).tolist()
    flat = [d * 16 + i * 4 + j for d, i, j in moved]
    assert flat and min(flat) > 1 * 16 + 2 * 4 + 2


def test_integer_softmax_follows_the_float_softmax():
    from licodec.entropy.context import IntegerSoftmax

    softmax = IntegerSoftmax()
    logits = torch.tensor([[0.0, 1.0, 2.0, -30.0], [5.0, 5.0, 5.0, 5.0]])
    freqs = softmax(torch.floor(logits * 1024).long(), 10)
    assert (freqs >= 1).all() and (freqs.sum(1) <= 1 << 16).all()
    reference = torch.softmax(logits.double(), 1)
    assert torch.allclose(freqs.double() / freqs.sum(1, keepdim=True), reference, atol=2e-3)


@pytest.mark.parametrize("conditioned", [False, True])
def test_volume_walk_equals_the_integer_network_on_the_whole_volume(conditioned):
    from licodec.entropy.context import VolumeContext

    torch.manual_seed(0)
    model = VolumeContext(3, filters=6, conditioned=conditioned)
    for parameter in model.parameters():
        parameter.data.normal_(0, 0.5)
    shape = (5, 4, 6)
    coded = torch.rand(shape) < 0.8
    symbols = torch.where(coded, torch.randint(3, shape), torch.full(shape, -1))
    values = torch.tensor([-1.0, 0.5, 2.0])
    condition = torch.randn(shape) if conditioned else None
    seen = torch.zeros((*shape, 3), dtype=torch.long)

    def step(freqs, where):
        seen[where] = torch.from_numpy(freqs)
        return symbols[where]

    assert torch.equal(model.visit(values, coded, step, condition), symbols)
    # The reference: every layer of the integer network evaluated on the whole, final volume at once.
    nets = model._nets()
    fixed = nets[0].to_fixed(values)
    h = torch.where(coded, fixed[symbols.clamp(min=0)], 0)[None, None]
    for k, net in enumerate(nets[: len(model.layers)]):
        h = net(h)
        if k == 0 and conditioned:
            h = h + nets[-1](nets[0].to_fixed(condition)[None, None])
        if k < len(model.layers) - 1:
            h = torch.clamp(h, min=0)
    reference = model.softmax(h[0].permute(1, 2, 3, 0)[coded], nets[len(model.layers) - 1].fraction_bits)
    assert torch.equal(seen[coded], reference)
