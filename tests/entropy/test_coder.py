import numpy as np
import pytest

from licodec.entropy import coder
from licodec.entropy.tables import PRECISION, quantize_pmfs
from licodec.errors import BitstreamError


def _tables():
    pmfs = [np.array([0.1, 0.6, 0.3]), np.array([0.25] * 4), np.array([1.0])]
    return quantize_pmfs(pmfs, tails=[1e-3, 1e-6, 1e-9], offsets=[-1, 0, 5])


def test_tables_sum_to_precision_and_keep_every_symbol():
    tables = _tables()
    for t in range(tables.count):
        row = tables.freqs[t, : tables.lengths[t] + 1]
        assert row.sum() == 1 << PRECISION
        assert row.min() >= 1


def test_round_trip_with_escapes_in_both_directions():
    tables = _tables()
    rng = np.random.default_rng(0)
    index = rng.integers(0, 3, size=(5, 7, 9))
    symbols = rng.integers(-3, 4, size=index.shape)
    symbols[0, 0, 0] = 10**6  # far above every table
    symbols[1, 2, 3] = -(2**31 - 1)
    index[0, 0, 0] = 2
    index[1, 2, 3] = 0
    data = coder.encode(symbols, index, tables)
    decoded = coder.decode(data, index, tables)
    np.testing.assert_array_equal(decoded, symbols)
    assert decoded.shape == index.shape


def test_escape_costs_more_than_an_in_range_symbol():
    tables = _tables()
    index = np.zeros(200, dtype=np.int64)
    in_range = np.zeros(200, dtype=np.int64)
    out_of_range = in_range.copy()
    out_of_range[::10] = 50
    assert len(coder.encode(out_of_range, index, tables)) > len(coder.encode(in_range, index, tables))


def test_skewed_symbols_cost_close_to_their_entropy():
    pmf = np.array([0.05, 0.9, 0.05])
    tables = quantize_pmfs([pmf], [1e-9], [-1])
    rng = np.random.default_rng(1)
    symbols = rng.choice([-1, 0, 1], p=pmf, size=20000)
    bits = 8 * len(coder.encode(symbols, np.zeros_like(symbols), tables))
    entropy = -(pmf * np.log2(pmf)).sum() * len(symbols)
    assert entropy <= bits <= entropy * 1.02 + 64


def test_damaged_data_is_reported_or_decodes():
    tables = _tables()
    index = np.zeros(100, dtype=np.int64)
    with pytest.raises(BitstreamError):
        coder.decode(b"\x00\x00\x00", index, tables)
    with pytest.raises(BitstreamError):
        coder.decode(b"\x00\x00\x00\x00", index, tables)
    rng = np.random.default_rng(2)
    for _ in range(50):
        junk = rng.integers(0, 256, size=4 * rng.integers(1, 10), dtype=np.uint8).tobytes()
        try:
            out = coder.decode(junk, index, tables)
        except BitstreamError:
            continue
        assert out.shape == index.shape


def test_tables_survive_packing():
    from licodec.entropy.tables import CdfTables

    tables = _tables()
    restored = CdfTables.from_tensors(tables.to_tensors("t"), "t")
    np.testing.assert_array_equal(restored.freqs, tables.freqs)
    np.testing.assert_array_equal(restored.lengths, tables.lengths)
    np.testing.assert_array_equal(restored.offsets, tables.offsets)


def test_tables_pack_frequencies_in_16_bits_and_read_the_old_int32_files():
    import torch

    from licodec.entropy.tables import PRECISION, CdfTables, quantize_pmfs

    # The extremes: a certain symbol (frequency 2**16 - 1 beside its escape) and a flat table (frequencies 1).
    tables = quantize_pmfs([np.array([1.0]), np.full(70000 // 2, 1.0)], [0.0, 0.0], [0, -5])
    assert tables.freqs.max() == (1 << PRECISION) - 1 and tables.freqs[1, : tables.lengths[1] + 1].min() == 1
    tensors = tables.to_tensors("t")
    assert tensors["t.freqs"].dtype == torch.int16
    restored = CdfTables.from_tensors(tensors, "t")
    np.testing.assert_array_equal(restored.freqs, tables.freqs)
    old = dict(tensors, **{"t.freqs": torch.from_numpy(np.concatenate(
        [tables.freqs[t, : tables.lengths[t] + 1] for t in range(tables.count)]).astype(np.int32))})
    np.testing.assert_array_equal(CdfTables.from_tensors(old, "t").freqs, tables.freqs)
