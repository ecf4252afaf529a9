"""The Laplace model of the overfitted codec: fixed tables, causal contexts, integer ARM, coding round trips."""

import hashlib

import numpy as np
import pytest
import torch

from licodec.entropy import laplace
from licodec.entropy.tables import PRECISION
from licodec.errors import LicodecError

SHAPES = [(16, 24), (8, 12), (4, 6), (2, 3), (1, 1)]


def _layers(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    sizes = [(16, laplace.CONTEXT), (16, 16), (2, 16)]
    return [laplace.IntegerLayer(np.round(rng.normal(0, 0.3 * scale, s) * 2**10).astype(np.int64), 10,
                                 np.round(rng.normal(0, 0.2, s[0]) * 2**8).astype(np.int64), 8) for s in sizes]


def _grids(seed=0, spread=3.0):
    rng = np.random.default_rng(seed)
    return [np.round(rng.laplace(0, spread, s)).astype(np.int64) for s in SHAPES]


def test_tables_are_the_pinned_integers():
    """The family is built from decimal and integer arithmetic only: the same bytes everywhere, never stored."""
    tables = laplace.tables()
    assert (tables.freqs.sum(1) == 1 << PRECISION).all()
    for t in range(tables.count):
        assert (tables.freqs[t, : tables.lengths[t] + 1] >= 1).all()
    digest = hashlib.sha256(tables.freqs.tobytes() + tables.lengths.tobytes() + tables.offsets.tobytes())
    assert digest.hexdigest() == "f17de6d25c9f4d0c6ca7f0d405973f95e754ebc45f583576859612a23edc7597"


def test_training_bits_match_the_tables():
    """The training pass's Laplace bits agree with the integer tables' code lengths where the mean sits on a
    table phase."""
    tables = laplace.tables()
    for s in (0, 8, 16, 30):
        log2_scale = laplace.LOG2_SCALE_MIN + s / laplace.SCALE_STEPS
        for phase in (0, 3):
            t = s * laplace.PHASES + phase
            v = np.arange(-3, 4)
            v = v[(v >= tables.offsets[t]) & (v < tables.offsets[t] + tables.lengths[t])]
            freq = tables.freqs[t, v - tables.offsets[t]]
            table_bits = PRECISION - np.log2(freq)
            y = torch.tensor(v, dtype=torch.float64)
            bits = laplace.laplace_bits(y, torch.full_like(y, phase / laplace.PHASES), torch.full_like(y, log2_scale))
            mask = table_bits < 10  # where the 1-count floor of the integer tables does not dominate
            assert np.allclose(bits.numpy()[mask], table_bits[mask], atol=0.05)


def test_no_context_sees_itself_or_a_later_latent():
    context = laplace.GridContext.build(SHAPES)
    front = np.full(context.size, -1)  # padding: known to be zero before anything is decoded
    front[context.position] = context.wavefront
    seen = front[context.neighbours]
    assert (seen < context.wavefront[:, None]).all()
    # and every neighbour is either padding or a latent of the same grid
    grid_of = np.full(context.size, -1)
    starts = np.cumsum([0] + [h * w for h, w in SHAPES])
    for g in range(len(SHAPES)):
        grid_of[context.position[starts[g] : starts[g + 1]]] = g
    own = np.repeat(np.arange(len(SHAPES)), [h * w for h, w in SHAPES])
    neighbour_grid = grid_of[context.neighbours]
    assert ((neighbour_grid == -1) | (neighbour_grid == own[:, None])).all()
    # the wavefronts visit every latent once
    assert sorted(context.order.tolist()) == list(range(len(context.position)))


@pytest.mark.parametrize("chunk", [7, 1 << 16])
def test_training_rate_sees_the_decoders_contexts_and_has_exact_gradients(monkeypatch, chunk):
    """`arm_rate` (chunked, hand-written backward) against autograd over the decoder's own gather indices: the
    same bits, and the same gradients for the latents (as symbols and as contexts) and every ARM tensor."""
    monkeypatch.setattr(laplace, "RATE_CHUNK", chunk)  # 7: many chunks of one row, 65536: one chunk per grid
    generator = torch.Generator().manual_seed(3)
    grids = [(torch.randn(s, generator=generator, dtype=torch.float64) * 3).requires_grad_(True) for s in SHAPES]
    sizes = [(16, laplace.CONTEXT), (16,), (16, 16), (16,), (2, 16), (2,)]
    weights = [(torch.randn(s, generator=generator, dtype=torch.float64) * 0.5).requires_grad_(True) for s in sizes]
    context = laplace.GridContext.build(SHAPES)

    def reference():
        values = torch.cat([g.reshape(-1) for g in grids])
        buffer = torch.zeros(context.size, dtype=torch.float64).index_put((torch.from_numpy(context.position),),
                                                                          values)
        contexts = buffer[torch.from_numpy(context.neighbours)]
        w1, b1, w2, b2, w3, b3 = weights
        h = torch.relu(contexts @ w1.T + b1)
        h = torch.relu(h @ w2.T + b2) + h
        out = h @ w3.T + b3
        return laplace.laplace_bits(values, out[:, 0], out[:, 1]).sum()

    results = []
    for rate in (reference, lambda: laplace.arm_rate(grids, weights)):
        value = rate()
        results.append((value.detach(), torch.autograd.grad(value, grids + weights)))
    (expected, expected_grads), (got, got_grads) = results
    assert torch.allclose(got, expected, rtol=1e-12)
    for want, have in zip(expected_grads, got_grads):
        assert torch.allclose(have, want, rtol=1e-9, atol=1e-9)
    assert any(float(g.abs().sum()) > 0 for g in got_grads[len(grids):])  # the test sees non-zero gradients


def _float_arm(context, layers):
    a = torch.from_numpy(context).double()
    w = [(torch.from_numpy(layer.weight).double() / 2**layer.weight_bits,
          torch.from_numpy(layer.bias).double() / 2**layer.bias_bits) for layer in layers]
    h = torch.relu(a @ w[0][0].T + w[0][1])
    h = torch.relu(h @ w[1][0].T + w[1][1]) + h
    out = h @ w[2][0].T + w[2][1]
    return out.numpy()


def test_integer_arm_agrees_with_the_float_arm():
    context = laplace.GridContext.build(SHAPES)
    layers = _layers(2)
    contexts = context.buffer(_grids(2))[context.neighbours]
    location, log2_scale = laplace.integer_arm(contexts, layers)
    expected = _float_arm(contexts, layers)
    got = np.stack([location, log2_scale], 1) / 2**laplace.FRAC
    assert np.abs(got - expected).max() < 0.05  # three rounding shifts of 2^-9 each, amplified by the weights
    t1, _ = laplace.select(location, log2_scale)
    t2, _ = laplace.select(np.round(expected[:, 0] * 2**laplace.FRAC), np.round(expected[:, 1] * 2**laplace.FRAC))
    assert (t1 == t2).mean() > 0.9


@pytest.mark.parametrize("spread", [0.3, 3.0, 200.0])
def test_latents_round_trip_in_wavefronts(spread):
    context = laplace.GridContext.build(SHAPES)
    layers = _layers(3)
    grids = _grids(4, spread)
    data = laplace.encode_latents(grids, context, layers)
    decoded = laplace.decode_latents(data, context, layers)
    assert all(np.array_equal(a, b) for a, b in zip(grids, decoded))
    ideal = laplace.latent_cost(grids, context, layers)
    assert 0.97 * ideal - 64 < 8 * len(data) < 1.03 * ideal + 64


def test_tensors_round_trip_and_damage_is_reported():
    rng = np.random.default_rng(5)
    tensors = [rng.integers(-300, 300, (4, 5)), np.zeros(3, dtype=np.int64), rng.integers(-2, 3, (7,))]
    data = laplace.encode_tensors(tensors, [9, 0, 14])
    values, bits = laplace.decode_tensors(data, [(4, 5), (3,), (7,)])
    assert bits == [9, 0, 14] and all(np.array_equal(a, b) for a, b in zip(tensors, values))
    with pytest.raises(LicodecError):
        laplace.decode_tensors(data[:3], [(4, 5), (3,), (7,)])
    with pytest.raises(LicodecError):
        laplace.decode_tensors(bytes([9, 200]) + data[2:], [(4, 5), (3,), (7,)])
