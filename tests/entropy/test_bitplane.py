"""licodec/entropy/bitplane.py: exact round trips, thread independence, causality, the rate estimate, damage."""

import numpy as np
import pytest
import torch

from licodec.entropy import coder
from licodec.entropy.bitplane import BATCHES, BitplaneContext, batch_masks, table_shapes
from licodec.errors import BitstreamError

PLANES = 4


@pytest.fixture
def context():
    """A coder with random tables, sharp enough that context matters."""
    generator = torch.Generator().manual_seed(0)
    context = BitplaneContext(5, PLANES)
    with torch.no_grad():
        for name in table_shapes(5):
            table = getattr(context, name)
            table.copy_((torch.randn(table.shape, generator=generator) * 48).clamp(-127, 127).int())
    context.reset()
    return context


def sparse_codes(shape=(5, 7, 9), seed=1):
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 1 << PLANES, shape, generator=generator)
    return codes * (torch.rand(shape, generator=generator) < 0.5)


def kept(codes, planes):
    return (codes >> (PLANES - planes)) << (PLANES - planes)


def test_batches_partition_each_plane():
    masks = batch_masks(5, 7, 9)
    assert len(masks) == BATCHES
    assert np.array_equal(np.sum(masks, axis=0), np.ones((5, 7, 9)))


@pytest.mark.parametrize("planes", [1, 2, PLANES])
def test_round_trip(context, planes):
    codes = sparse_codes()
    data = context.encode(codes, planes)
    assert torch.equal(context.decode(data, planes, tuple(codes.shape)), kept(codes, planes))


def test_same_bytes_with_one_and_two_threads(context):
    codes = sparse_codes((5, 16, 24), seed=3)
    saved = torch.get_num_threads()
    try:
        sections = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            sections.append(context.encode(codes, PLANES))
            assert torch.equal(context.decode(sections[-1], PLANES, tuple(codes.shape)), codes)
    finally:
        torch.set_num_threads(saved)
    assert sections[0] == sections[1]


def test_the_estimate_is_the_file(context):
    codes = sparse_codes((5, 24, 32), seed=4)
    for planes in (1, PLANES):
        probabilities, side = context.probabilities(codes, planes)
        assert probabilities.shape == (5 * PLANES, 24, 32) and side == planes * 5 * 4
        estimate = (float(-torch.log2(probabilities).sum()) + side) / 8
        assert len(context.encode(codes, planes)) == pytest.approx(estimate, rel=0.01, abs=8)


def recorded_logits(context, codes):
    """The integer logits (before the per-image offsets) of every bit, (C, planes, H, W), as the coder's walk
    computes them."""
    c, h, w = codes.shape
    out = torch.zeros(c, PLANES, h * w, dtype=torch.long)

    def step(logits, p, chs, pos):
        out[torch.from_numpy(chs)[:, None], p, torch.from_numpy(pos)[None, :]] = torch.from_numpy(logits)
        return context._plane_bits(codes.numpy(), p, chs, pos)

    context.walk(PLANES, tuple(codes.shape), step)
    return out.view(c, PLANES, h, w)


@pytest.mark.parametrize("plane,batch", [(0, 0), (0, 3), (1, 1), (2, 4), (3, 5), (3, BATCHES - 1)])
def test_no_bit_sees_itself_or_a_later_bit(context, plane, batch):
    """Changing every bit from (plane, batch) on in coding order (that batch, the plane's later batches, every
    later plane) leaves the context (the logit) of every bit up to that batch unchanged. (The per-image offsets
    are side information, sent before their plane: they may depend on all its bits.)"""
    codes = sparse_codes((5, 8, 10), seed=5)
    masks = batch_masks(5, 8, 10)
    later = torch.from_numpy(np.logical_or.reduce(masks[batch:]))
    generator = torch.Generator().manual_seed(6)
    changed = codes.clone()
    for p in range(plane, PLANES):
        flip = torch.rand(codes.shape, generator=generator) < 0.5
        if p == plane:
            flip &= later
        changed ^= flip.long() << (PLANES - 1 - p)
    assert not torch.equal(changed, codes)
    before, after = recorded_logits(context, codes), recorded_logits(context, changed)
    visible = torch.zeros(5, PLANES, 8, 10, dtype=torch.bool)
    visible[:, :plane] = True
    visible[:, plane] = torch.from_numpy(np.logical_or.reduce(masks[: batch + 1]))
    assert torch.equal(before[visible], after[visible])
    if (~visible).any():  # the later bits' contexts did change (the test changes what they see)
        assert not torch.equal(before[~visible], after[~visible])


def test_offsets_adapt_a_miscalibrated_model():
    """A model that knows nothing (all logits 0, P = 1/2) codes a sparse plane in far fewer bits with the per-image
    offsets it sends, and the decoder reads them back."""
    context = BitplaneContext(5, PLANES)
    codes = sparse_codes((5, 16, 24), seed=9) * (torch.rand(5, 16, 24, generator=torch.Generator().manual_seed(2))
                                                 < 0.2)
    offsets = context._plan(codes.numpy(), PLANES)[0][0]
    assert (offsets < 0).all()  # few ones: every channel's logits pushed down
    data = context.encode(codes, PLANES)
    assert len(data) < 0.8 * 5 * PLANES * 16 * 24 / 8
    assert torch.equal(context.decode(data, PLANES, (5, 16, 24)), codes)


def test_damaged_sections_raise_or_decode(context):
    codes = sparse_codes((5, 16, 24), seed=7)
    data = context.encode(codes, PLANES)
    with pytest.raises(BitstreamError):
        context.decode(data[:-3], PLANES, tuple(codes.shape))  # not whole words
    with pytest.raises(BitstreamError):
        context.decode(data + b"\0\0\0\1", PLANES, tuple(codes.shape))  # data left over
    rng = np.random.default_rng(8)
    for _ in range(20):
        damaged = bytearray(data)
        damaged[int(rng.integers(len(damaged)))] ^= 1 << int(rng.integers(8))
        try:
            decoded = context.decode(bytes(damaged[: len(damaged) - 4 * int(rng.integers(2))]), PLANES,
                                     tuple(codes.shape))
        except BitstreamError:
            continue
        assert decoded.shape == codes.shape and int(decoded.min()) >= 0 and int(decoded.max()) < 1 << PLANES


def test_binary_coder_refuses_probabilities_out_of_range():
    with pytest.raises(ValueError, match="binary probabilities"):
        coder.encode_binary_chunks([(np.array([0, 1]), np.array([0, 1 << 15]))])
    data = coder.encode_binary_chunks([(np.array([0, 1, 1]), np.array([1, 40000, 65535])), (np.array([1]),
                                                                                            np.array([3]))])
    decoder = coder.BinaryDecoder(data)
    assert decoder.decode(np.array([1, 40000, 65535])).tolist() == [0, 1, 1]
    assert decoder.decode(np.array([3])).tolist() == [1]
    decoder.finish()
