"""Entropy coding: integer tables and symbols in, bytes out. The only module that calls `constriction`.

Symbols are coded with range ANS (`constriction.stream.stack.AnsCoder`). Each symbol names the table it is coded
with; symbols are grouped by table so that one model is built per table, and the decoder, which knows the table
of every symbol before decoding it, visits the groups in the same order. A value outside its table's range is
coded as the table's escape symbol followed by the value: its sign and bit length with uniform models, then its
bits in 16-bit chunks. Nothing is clipped.
"""

from __future__ import annotations

import constriction
import numpy as np

from licodec.entropy.tables import CdfTables
from licodec.errors import BitstreamError

Categorical = constriction.stream.model.Categorical
Uniform = constriction.stream.model.Uniform
AnsCoder = constriction.stream.stack.AnsCoder

_CHUNK = 16
_MAX_ESCAPE_BITS = 32
_LENGTH_MODEL = Uniform(_MAX_ESCAPE_BITS + 1)
_SIGN_MODEL = Uniform(2)
_CHUNK_MODEL = Uniform(1 << _CHUNK)


def _model(tables: CdfTables, t: int) -> Categorical:
    """Table t as a constriction model, built once per tables object (autoregressive decoding asks thousands of
    times for the same few models)."""
    cache = tables.__dict__.setdefault("_constriction_models", {})
    model = cache.get(t)
    if model is None:
        model = cache[t] = Categorical(tables.freqs[t, : tables.lengths[t] + 1].astype(np.float64), perfect=False)
    return model


def _encode_escapes(coder: AnsCoder, values: np.ndarray) -> None:
    """Push escaped values (already relative to the table range) so that `_decode_escapes` pops them in order."""
    signs = (values < 0).astype(np.int32)
    magnitudes = np.abs(values).astype(np.int64)
    nbits = np.array([int(m).bit_length() for m in magnitudes], dtype=np.int32)
    # Stack order: the last thing pushed is the first popped. Decoding pops sign, length, chunks per value.
    for sign, magnitude, bits in zip(signs[::-1], magnitudes[::-1], nbits[::-1]):
        chunks = [(int(magnitude) >> shift) & ((1 << _CHUNK) - 1) for shift in range(0, int(bits), _CHUNK)]
        if chunks:
            coder.encode_reverse(np.array(chunks, dtype=np.int32), _CHUNK_MODEL)
        coder.encode_reverse(np.array([bits], dtype=np.int32), _LENGTH_MODEL)
        coder.encode_reverse(np.array([sign], dtype=np.int32), _SIGN_MODEL)


def _decode_escapes(coder: AnsCoder, count: int) -> np.ndarray:
    values = np.zeros(count, dtype=np.int64)
    for i in range(count):
        sign = int(coder.decode(_SIGN_MODEL, 1)[0])
        bits = int(coder.decode(_LENGTH_MODEL, 1)[0])
        magnitude = 0
        nchunks = (bits + _CHUNK - 1) // _CHUNK
        if nchunks:
            for k, chunk in enumerate(coder.decode(_CHUNK_MODEL, nchunks)):
                magnitude |= int(chunk) << (k * _CHUNK)
        values[i] = -magnitude if sign else magnitude
    return values


def _groups(table_index: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(table, positions of its symbols in raster order) for every table used, tables ascending."""
    order = np.argsort(table_index, kind="stable")
    tables, starts = np.unique(table_index[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    return [(int(t), order[a:b]) for t, a, b in zip(tables, starts, ends)]


def _push(coder: AnsCoder, symbols: np.ndarray, table_index: np.ndarray, tables: CdfTables) -> None:
    """Push one chunk of symbols so that `_pop` with the same table indices returns them."""
    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    table_index = np.asarray(table_index, dtype=np.int64).ravel()
    if symbols.shape != table_index.shape:
        raise ValueError("symbols and table_index differ in size")
    for t, where in reversed(_groups(table_index)):
        values = symbols[where] - int(tables.offsets[t])
        length = int(tables.lengths[t])
        escaped = (values < 0) | (values >= length)
        # Escaped values are stored as their distance below 0 (negative) or above the last symbol (non-negative).
        overflow = np.where(values[escaped] < 0, values[escaped], values[escaped] - length)
        _encode_escapes(coder, overflow)
        indices = np.where(escaped, length, values).astype(np.int32)
        coder.encode_reverse(indices, _model(tables, t))


def _pop(coder: AnsCoder, table_index: np.ndarray, tables: CdfTables) -> np.ndarray:
    shape = np.shape(table_index)
    table_index = np.asarray(table_index, dtype=np.int64).ravel()
    symbols = np.zeros(table_index.shape, dtype=np.int64)
    for t, where in _groups(table_index):
        length = int(tables.lengths[t])
        indices = coder.decode(_model(tables, t), len(where)).astype(np.int64)
        escaped = indices == length
        overflow = _decode_escapes(coder, int(escaped.sum()))
        indices[escaped] = np.where(overflow < 0, overflow, overflow + length)
        symbols[where] = indices + int(tables.offsets[t])
    return symbols.reshape(shape)


def encode_chunks(chunks: list[tuple[np.ndarray, np.ndarray]], tables: CdfTables) -> bytes:
    """Code chunks of (symbols, table_index) into one stream that `ChunkDecoder` reads back chunk by chunk, first
    chunk first: for autoregressive models, whose decoder learns the tables of a chunk only after the previous one.
    """
    coder = AnsCoder()
    for symbols, table_index in reversed(chunks):
        _push(coder, symbols, table_index, tables)
    return coder.get_compressed().astype("<u4").tobytes()


def encode(symbols: np.ndarray, table_index: np.ndarray, tables: CdfTables) -> bytes:
    """Code integer `symbols` (any shape), each with the table `table_index` names, into bytes."""
    return encode_chunks([(symbols, table_index)], tables)


class ChunkDecoder:
    """Reads the chunks of `encode_chunks` in order; damaged data raises `BitstreamError`."""

    def __init__(self, data: bytes, tables: CdfTables) -> None:
        if len(data) % 4:
            raise BitstreamError("entropy-coded section is not a whole number of 32-bit words")
        self.tables = tables
        try:
            self._coder = AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        except ValueError as error:
            raise BitstreamError(f"entropy-coded data is damaged ({error})") from None

    def decode(self, table_index: np.ndarray) -> np.ndarray:
        """The next chunk's symbols, shaped like `table_index`."""
        try:
            return _pop(self._coder, table_index, self.tables)
        except (ValueError, RuntimeError, OverflowError) as error:
            raise BitstreamError(f"entropy-coded data is damaged ({error})") from None


def decode(data: bytes, table_index: np.ndarray, tables: CdfTables) -> np.ndarray:
    """Inverse of `encode`: the symbols, shaped like `table_index`. Damaged data raises `BitstreamError`."""
    return ChunkDecoder(data, tables).decode(table_index)


_FAMILY = Categorical(perfect=False)  # per-symbol categorical models, parameters given with the symbols


def _probabilities(freqs: np.ndarray) -> np.ndarray:
    freqs = np.asarray(freqs, dtype=np.int64)
    if freqs.ndim != 2 or (freqs <= 0).any():
        raise ValueError("frequencies must be a positive (n, alphabet) array")
    return (freqs / freqs.sum(axis=1, keepdims=True)).astype(np.float64)


def encode_categorical_chunks(chunks: list[tuple[np.ndarray, np.ndarray]]) -> bytes:
    """Code chunks of (symbols (n,), integer frequencies (n, alphabet)): every symbol with its own distribution,
    as a context model over a small alphabet predicts them. `CategoricalDecoder` reads the chunks back in order.

    The frequencies are integers computed identically by encoder and decoder; their ratios (correctly rounded
    float64 divisions, the same on every IEEE machine) are what constriction quantizes, so both sides build the
    same models."""
    coder = AnsCoder()
    for symbols, freqs in reversed(chunks):
        if len(symbols):
            coder.encode_reverse(np.asarray(symbols, dtype=np.int32), _FAMILY, _probabilities(freqs))
    return coder.get_compressed().astype("<u4").tobytes()


class _StreamDecoder:
    """An ANS stream of 32-bit words whose chunks are read one model family at a time; damaged data raises
    `BitstreamError`."""

    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise BitstreamError("entropy-coded section is not a whole number of 32-bit words")
        try:
            self._coder = AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        except ValueError as error:
            raise BitstreamError(f"entropy-coded data is damaged ({error})") from None

    def _decode(self, family, parameters: np.ndarray) -> np.ndarray:
        try:
            return self._coder.decode(family, parameters).astype(np.int64)
        except (ValueError, RuntimeError, OverflowError) as error:
            raise BitstreamError(f"entropy-coded data is damaged ({error})") from None


class CategoricalDecoder(_StreamDecoder):
    """Reads the chunks of `encode_categorical_chunks`; damaged data raises `BitstreamError`."""

    def decode(self, freqs: np.ndarray) -> np.ndarray:
        """The next chunk's symbols, one per row of `freqs`."""
        if not len(freqs):
            return np.zeros(0, dtype=np.int64)
        return self._decode(_FAMILY, _probabilities(freqs))


_BERNOULLI = constriction.stream.model.Bernoulli(perfect=False)  # per-symbol P(1), given with the symbols
BINARY_PRECISION = 16  # P(1) of `encode_binary_chunks` in 1/2**16


def _bernoulli(probabilities: np.ndarray) -> np.ndarray:
    """P(1) as float64 of integers in 1/2**16 (exact: a power-of-two division), checked to be in [1, 2**16 - 1]."""
    probabilities = np.asarray(probabilities, dtype=np.int64).ravel()
    if probabilities.size and (probabilities.min() < 1 or probabilities.max() >= 1 << BINARY_PRECISION):
        raise ValueError(f"binary probabilities must be integers in [1, 2**{BINARY_PRECISION} - 1]")
    return probabilities.astype(np.float64) / (1 << BINARY_PRECISION)


def encode_binary_chunks(chunks: list[tuple[np.ndarray, np.ndarray]]) -> bytes:
    """Code chunks of (bits (n,), P(1) (n,) integers in 1/2**16): every bit with its own probability, as a bitplane
    context model predicts a whole batch of bits at once. `BinaryDecoder` reads the chunks back in order.

    The probabilities are integers computed identically by encoder and decoder; divided by 2**16 they are exact
    float64 numbers, which constriction quantizes the same way on every machine. The stream ends with one more bit,
    a 1 at probability 1/2, that `BinaryDecoder.finish` checks: an ANS stack that starts empty codes the first zeros
    pushed (the last decoded) for free, so without it a stream's size would depend on how its last bits happen to
    end, not only on their probabilities (the training pass's estimate would be off for small images), and a
    decoder reading past the end would read zeros without noticing."""
    coder = AnsCoder()
    coder.encode_reverse(np.array([1], dtype=np.int32), _BERNOULLI, np.array([0.5]))
    for bits, probabilities in reversed(chunks):
        bits = np.asarray(bits, dtype=np.int32).ravel()
        if bits.size:
            coder.encode_reverse(bits, _BERNOULLI, _bernoulli(probabilities))
    return coder.get_compressed().astype("<u4").tobytes()


class BinaryDecoder(_StreamDecoder):
    """Reads the chunks of `encode_binary_chunks`; damaged data raises `BitstreamError`."""

    def decode(self, probabilities: np.ndarray) -> np.ndarray:
        """The next chunk's bits (int64), one per entry of `probabilities` (P(1) in 1/2**16)."""
        probabilities = _bernoulli(probabilities)
        if not probabilities.size:
            return np.zeros(0, dtype=np.int64)
        return self._decode(_BERNOULLI, probabilities)

    def finish(self) -> None:
        """Read the end mark and check that every word was read: what an intact section leaves (a damaged or
        padded one rarely does)."""
        if self.decode(np.array([1 << (BINARY_PRECISION - 1)])).tolist() != [1] or not self._coder.is_empty():
            raise BitstreamError("entropy-coded data is damaged (data left after the last symbol)")
