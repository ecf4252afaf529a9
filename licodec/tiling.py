"""Tiled coding of large images: bounded memory, parallel tiles, no visible seams.

An image larger than the tile size on either side is cut into a grid of overlapping windows. Each window is coded
as an image of its own by the codec (its own group of byte sections), so the encoder and the decoder hold one
tile's latents at a time per job, and tiles code in parallel. On decoding, neighbouring windows are blended
across their overlap with complementary linear ramps (the weights of all windows sum to one at every pixel), which
hides the step that two independent reconstructions would otherwise leave at a border.

Grid. The encoder cuts an axis of `size` pixels into `ceil(size / tile)` windows that overlap by `overlap`, spread
evenly, their side rounded up to a multiple of the codec's stride, and writes the window sides it chose. From a
window side `w`, the decoder rebuilds the grid from the header alone: along the axis there are
`1 if size <= w else ceil((size - overlap) / (w - overlap))` windows, window k starts at `k * (w - overlap)` and
is clipped to the image (the codec pads a clipped window to its multiple, as it pads any image).

The "TILE" chunk of the file header (format version 3, critical: a reader without tiling refuses the file) is, in
big-endian integers:

    version       1  TILE_VERSION
    tile height   2  a multiple of the codec's `multiple`, at most MAX_TILE
    tile width    2  likewise
    overlap       2  pixels shared by neighbouring windows, at most half a tile
    tiles         2  t = rows x columns of the grid
    sections      t  how many of the file's sections each tile has, in raster order (each at least one)

The sections of tile 0 come first, then tile 1's, and so on. Untiled files have no such chunk and are unchanged.
Progressive codecs (one section per iteration, any prefix decodes) are not tiled: a tile-major file has no
decodable prefix; images above `UNTILED_PIXELS` are refused for them.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from licodec.codecs.base import Codec, Encoded
from licodec.errors import BitstreamError, CodecError

TAG = "TILE"
TILE_VERSION = 1
DEFAULT_TILE = 1024  # tile step; images no larger than this on both sides are coded whole, as before
DEFAULT_OVERLAP = 16  # pixels blended between neighbours; 8 or more hides the seams (docs/tiling.md)
MAX_TILE = 2048  # the decoder never allocates a larger window (about 2 GB with the default codec)
MAX_SECTIONS = 255  # what the container's one-byte section count allows
UNTILED_PIXELS = 1 << 21  # progressive codecs code whole images up to this many (1920x1080 peaks at 2 GB)
_HEAD = struct.Struct(">BHHHH")

T = TypeVar("T")


@dataclass(frozen=True)
class Grid:
    """Overlapping windows of `tile_height` x `tile_width` over a `height` x `width` image."""

    height: int
    width: int
    tile_height: int
    tile_width: int
    overlap: int

    @staticmethod
    def _count(size: int, tile: int, overlap: int) -> int:
        return 1 if size <= tile else math.ceil((size - overlap) / (tile - overlap))

    @property
    def rows(self) -> int:
        return self._count(self.height, self.tile_height, self.overlap)

    @property
    def columns(self) -> int:
        return self._count(self.width, self.tile_width, self.overlap)

    def __len__(self) -> int:
        return self.rows * self.columns

    def window(self, index: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of tile `index` (raster order), clipped to the image."""
        row, column = divmod(index, self.columns)
        top = row * (self.tile_height - self.overlap)
        left = column * (self.tile_width - self.overlap)
        return top, left, min(self.tile_height, self.height - top), min(self.tile_width, self.width - left)

    def weights(self, index: int) -> torch.Tensor:
        """The blending weights of tile `index` (height x width): linear ramps across each overlap it shares with
        a neighbour, one elsewhere. Over the grid they sum to one at every pixel."""
        row, column = divmod(index, self.columns)
        top, left, height, width = self.window(index)
        ramp_y = _ramp(height, self.overlap, row > 0, row < self.rows - 1)
        ramp_x = _ramp(width, self.overlap, column > 0, column < self.columns - 1)
        return ramp_y[:, None] * ramp_x[None, :]


def _ramp(size: int, overlap: int, rising: bool, falling: bool) -> torch.Tensor:
    ramp = torch.ones(size)
    if overlap:
        up = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        if rising:
            ramp[:overlap] = up
        if falling:
            ramp[size - overlap :] = 1 - up  # the next window's rise over the same pixels, complemented
    return ramp


def _side(size: int, tile: int, overlap: int, multiple: int) -> int:
    """The window side along one axis: `ceil(size / tile)` windows overlapping by `overlap`, spread evenly, the
    side rounded up to a multiple of `multiple` (so at most `tile + overlap` rounded up)."""
    count = math.ceil(size / tile)
    even = math.ceil((size + (count - 1) * overlap) / count)
    return even + (-even) % multiple


def plan(height: int, width: int, multiple: int, tile: int = DEFAULT_TILE,
         overlap: int = DEFAULT_OVERLAP) -> Grid | None:
    """The grid for an image, or None when it fits in one tile (coded whole, as an untiled file)."""
    if tile < multiple or tile % multiple or tile + overlap > MAX_TILE:
        raise CodecError(f"the tile size must be a multiple of {multiple} from {multiple} to "
                         f"{MAX_TILE - overlap}, got {tile}")
    if not 0 <= overlap <= tile // 2:
        raise CodecError(f"the tile overlap must be from 0 to half the tile ({tile // 2}), got {overlap}")
    if height <= tile and width <= tile:
        return None
    return Grid(height, width, _side(height, tile, overlap, multiple), _side(width, tile, overlap, multiple),
                overlap)


def pack_chunk(grid: Grid, counts: list[int]) -> bytes:
    """The TILE chunk's bytes for a grid and the number of sections of each tile."""
    return _HEAD.pack(TILE_VERSION, grid.tile_height, grid.tile_width, grid.overlap, len(counts)) + bytes(counts)


def parse_chunk(data: bytes, height: int, width: int, multiple: int, sections: int) -> tuple[Grid, list[int]]:
    """The grid and per-tile section counts of a TILE chunk, checked against the header (image size, section
    count) and the codec's stride before anything is allocated; BitstreamError on any inconsistency."""
    if len(data) < _HEAD.size:
        raise BitstreamError("the TILE chunk is truncated: the file is corrupted")
    version, tile_height, tile_width, overlap, count = _HEAD.unpack_from(data)
    if version != TILE_VERSION:
        raise BitstreamError(f"tiling version {version}; this licodec reads version {TILE_VERSION}")
    for side in (tile_height, tile_width):
        if not multiple <= side <= MAX_TILE or side % multiple or 2 * overlap > side:
            raise BitstreamError(f"invalid tiling ({tile_width}x{tile_height} tiles, overlap {overlap}): "
                                 "the file is corrupted")
    grid = Grid(height, width, tile_height, tile_width, overlap)
    counts = list(data[_HEAD.size :])
    if count != len(grid) or len(counts) != count:
        raise BitstreamError(f"the TILE chunk describes {count} tiles in {len(counts)} bytes where the image "
                             f"needs {len(grid)}: the file is corrupted")
    if min(counts) < 1 or sum(counts) != sections:
        raise BitstreamError(f"the tiles hold {sum(counts)} sections (each at least one) but the file has "
                             f"{sections}: the file is corrupted")
    return grid, counts


@dataclass
class TiledEncoded(Encoded):
    """An `Encoded` whose sections are those of its tiles in raster order, `counts[k]` of them for tile k."""

    counts: list[int] = field(default_factory=list)
    chunks: dict[str, bytes] = field(default_factory=dict)  # the TILE chunk, for the file header


def describe(data: bytes) -> str:
    """A TILE chunk in words, e.g. "28 tiles of 896x1024, overlap 32" (no checks beyond its length)."""
    if len(data) < _HEAD.size:
        return f"{len(data)} bytes (truncated)"
    _, tile_height, tile_width, overlap, count = _HEAD.unpack_from(data)
    return f"{count} tiles of {tile_width}x{tile_height}, overlap {overlap}"


def _ordered(function: Callable[[int], T], count: int, jobs: int) -> Iterator[T]:
    """function(0), ..., function(count - 1) in order, `jobs` at a time; at most `jobs` results are held."""
    if jobs <= 1:
        yield from map(function, range(count))
        return
    with ThreadPoolExecutor(jobs) as pool:
        pending: deque = deque()
        for index in range(count):
            pending.append(pool.submit(function, index))
            if len(pending) >= jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@contextmanager
def _threads_per_job(jobs: int) -> Iterator[None]:
    """Share torch's intra-op threads among `jobs` concurrent tiles instead of oversubscribing the cores."""
    saved = torch.get_num_threads()
    torch.set_num_threads(max(1, saved // max(1, jobs)))
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _progress(items: Iterable[T], total: int, description: str, progress: bool | None,
              done: int = 0) -> Iterable[T]:
    """`items` with a progress bar on stderr (when it is a terminal, or always when `progress` is True)."""
    if progress is False:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, initial=done, desc=description, unit="tile", leave=False,
                disable=None if progress is None else False)


class TiledCodec:
    """A codec seen through a tile grid: `compress` / `decompress` code tile by tile; every other attribute is the
    wrapped codec's, so rate control and the API use it like the codec itself.

    `compress` returns a `TiledEncoded`; `decompress` takes one, or a plain `Encoded` of the sections of a file
    whose TILE chunk made this view (`from_chunk`)."""

    def __init__(self, codec: Codec, grid: Grid, jobs: int = 1, progress: bool | None = None) -> None:
        self.codec = codec
        self.grid = grid
        self.jobs = max(1, int(jobs))
        self.progress = progress
        self.counts: list[int] | None = None

    def __getattr__(self, name: str) -> Any:
        if name == "codec":  # not yet set (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.codec, name)

    @classmethod
    def from_chunk(cls, codec: Codec, data: bytes, height: int, width: int, sections: int, jobs: int = 1,
                   progress: bool | None = None) -> TiledCodec:
        """The tiled view that decodes a file whose header has this TILE chunk (checked by `parse_chunk`)."""
        if codec.progressive:
            raise BitstreamError(f"{codec.name} is progressive and never tiled: the file is corrupted")
        grid, counts = parse_chunk(data, height, width, codec.multiple, sections)
        tiled = cls(codec, grid, jobs, progress)
        tiled.counts = counts
        return tiled

    def _tile_options(self, options: dict[str, Any], index: int) -> dict[str, Any]:
        top, left, height, width = self.grid.window(index)
        preserve = options.get("preserve")
        if preserve is None:
            return options
        return {**options, "preserve": preserve[..., top : top + height, left : left + width]}

    def compress(self, x: torch.Tensor, quality: float, **options: Any) -> TiledEncoded:
        """Code each window of `x` (1x3xHxW, the grid's size) with the codec; options (a preserve mask) are cut
        to each window. A grid whose tiles would need more sections than a file holds is replanned with larger
        tiles."""

        def one(index: int) -> list[bytes]:
            top, left, height, width = self.grid.window(index)
            with torch.inference_mode():
                tile = x[..., top : top + height, left : left + width]
                return self.codec.compress(tile, quality, **self._tile_options(options, index)).sections

        first = one(0)  # alone: it also builds the codec's lazily made integer networks before threads share them
        grid = self._fitting(len(first))
        if grid is not self.grid:
            self.grid = grid
            first = one(0)
        sections, counts = list(first), [len(first)]
        with _threads_per_job(self.jobs):
            rest = _ordered(lambda k: one(k + 1), len(self.grid) - 1, self.jobs)
            for tile_sections in _progress(rest, len(self.grid), "compressing", self.progress, done=1):
                sections += tile_sections
                counts.append(len(tile_sections))
        if len(sections) > MAX_SECTIONS:
            raise CodecError(f"the tiles need {len(sections)} sections, more than a file's {MAX_SECTIONS}; "
                             "use larger tiles")
        return TiledEncoded(sections, self.grid.height, self.grid.width, quality, counts,
                            {TAG: pack_chunk(self.grid, counts)})

    def _fitting(self, sections_per_tile: int) -> Grid:
        """The grid, or else the first with larger tiles whose sections fit in one file."""
        grid, step = self.grid, max(self.grid.tile_height, self.grid.tile_width)
        while len(grid) * sections_per_tile > MAX_SECTIONS:
            step += self.codec.multiple
            if step + grid.overlap > MAX_TILE:
                raise CodecError(f"the image needs more than {MAX_SECTIONS} sections even in tiles of {MAX_TILE}")
            grid = plan(grid.height, grid.width, self.codec.multiple, step, grid.overlap)
        return grid

    def decompress(self, encoded: Encoded) -> torch.Tensor:
        """The image (1x3xHxW in [0, 1]) of a tiled `Encoded`: tiles decode in order, `jobs` at a time, and are
        blended into the output as they come, so no more than `jobs` tiles' latents are ever held."""
        counts = encoded.counts if isinstance(encoded, TiledEncoded) else self.counts
        if counts is None or len(counts) != len(self.grid) or sum(counts) != len(encoded.sections):
            raise BitstreamError("the sections do not match the tile grid: the file is corrupted")
        starts = [0]
        for count in counts:
            starts.append(starts[-1] + count)

        def one(index: int) -> torch.Tensor:
            _, _, height, width = self.grid.window(index)
            tile = Encoded(encoded.sections[starts[index] : starts[index + 1]], height, width, encoded.quality)
            with torch.inference_mode():
                return self.codec.decompress(tile)

        output = torch.zeros(1, 3, self.grid.height, self.grid.width)
        with _threads_per_job(self.jobs):
            tiles = _ordered(one, len(self.grid), self.jobs)
            for index, tile in enumerate(_progress(tiles, len(self.grid), "decompressing", self.progress)):
                top, left, height, width = self.grid.window(index)
                if tile.shape[-2:] != (height, width):
                    raise BitstreamError(f"tile {index} decodes to {tile.shape[-1]}x{tile.shape[-2]}, not "
                                         f"{width}x{height}: the file is corrupted")
                region = output[..., top : top + height, left : left + width]
                region.add_(tile.float().reshape(1, 3, height, width) * self.grid.weights(index))
        return output.clamp_(0, 1)


def for_image(codec: Codec, height: int, width: int, tile: int | None = None, overlap: int | None = None,
              jobs: int = 1, progress: bool | None = None) -> Codec | TiledCodec:
    """The codec to code a height x width image with: a `TiledCodec` when the image is larger than one tile, the
    codec itself otherwise. Progressive codecs are never tiled, and refuse images above UNTILED_PIXELS."""
    tile = DEFAULT_TILE if tile is None else int(tile)
    overlap = DEFAULT_OVERLAP if overlap is None else int(overlap)
    if codec.progressive:
        if height * width > UNTILED_PIXELS:
            raise CodecError(f"{codec.name} is progressive and codes whole images only, up to {UNTILED_PIXELS} "
                             f"pixels; this one has {height * width} (a non-progressive codec tiles it)")
        return codec
    grid = plan(height, width, codec.multiple, tile, overlap)
    return codec if grid is None else TiledCodec(codec, grid, jobs, progress)
