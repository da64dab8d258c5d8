"""Cutting size x size stamps of every band around given positions, in nJy.

Centre convention: a row's stamp lies on the grid of the first band's tile that holds its
position (the one farthest from its edge where tiles overlap); with (ix, iy) the pixel holding
the position, the stamp is rows [iy - size//2, iy - size//2 + size) and the same columns around
ix, for even and odd sizes alike, and may reach beyond that tile. Each band's pixels come from
(a) tiles sharing the grid's projection (patches of one tract), copied exactly, then (b) tiles
with their own projection (bricks), resampled onto it (see resample.py). Rows that cannot be cut
are rejected with one reason each, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.wcs import WCS

from lensflow.config import ImagesConfig
from lensflow.errors import CutoutError, ImageError
from lensflow.images.index import TileIndex, locate
from lensflow.images.projection import shifted, wcs_from_text
from lensflow.images.readers import TileReader
from lensflow.images.resample import Resampled, source_window
from lensflow.regions import unit_vectors
from lensflow.units import unit_factor

REASONS = ("bad_coordinates", "no_coverage", "unreadable_tile", "edge", "masked", "non_finite")
"""Why a row gets no stamp: its ra/dec is not a sky position; no tile holds it; a tile it needs
cannot be read; its stamp reaches beyond the tiles; it touches masked or non-finite pixels."""


@dataclass(frozen=True)
class Stamps:
    """The stamps of the rows that could be cut, and the ids of those that could not."""

    ids: np.ndarray  # int64 (M,), the rows cut, in input order
    images: np.ndarray  # float32 (M, bands, size, size), nJy per pixel
    rejected: dict[str, np.ndarray] = field(default_factory=dict)  # reason -> int64 ids
    tile_errors: dict[str, str] = field(default_factory=dict)  # tile path -> "reason: message"


@dataclass(frozen=True)
class _Place:
    """Where a row's stamp lies: origin (x0, y0) on tile `ref`'s grid, the row's unit vector,
    and the row (on that grid) down to which the next stamps of the same tile reach."""

    ref: int
    x0: int
    y0: int
    at: np.ndarray
    through: int


class _Fill:
    """One band's stamp being filled: pixels, which are set, and what went wrong on the way."""

    def __init__(self, size: int) -> None:
        self.pixels = np.full((size, size), np.nan)
        self.filled = np.zeros((size, size), dtype=bool)
        self.masked = False
        self.broken = False


class _Cutter:
    """Stamps from one index's tiles for one partition task: WCS objects and offsets cached."""

    def __init__(self, index: TileIndex, config: ImagesConfig, reader: TileReader) -> None:
        self.index = index
        self.size = config.size
        self.mask_bits = config.mask_bits
        self.reader = reader
        self.tile_errors: dict[str, str] = {}
        self._wcs: dict[int, WCS] = {}
        self._exact: dict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._bands = {str(b): np.flatnonzero(index.band == b) for b in np.unique(index.band)}
        self._pad = np.radians(config.size * np.nanmax(index.pixel_scale, initial=0.0) / 3600.0)

    def wcs(self, tile: int) -> WCS:
        if tile not in self._wcs:
            self._wcs[tile] = wcs_from_text(str(self.index.wcs_text[tile]))
        return self._wcs[tile]

    def band_tiles(self, band: str) -> np.ndarray:
        return self._bands.get(band, np.zeros(0, dtype=np.int64))

    def _exact_sources(self, band: str, ref: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A band's tiles sharing `ref`'s projection and their integer offsets from its grid."""
        key = (band, ref)
        if key not in self._exact:
            tiles = self.band_tiles(band)
            tiles = tiles[self.index.projection[tiles] == self.index.projection[ref]]
            offset = np.rint(self.index.crpix[tiles] - self.index.crpix[ref]).astype(np.int64)
            self._exact[key] = (tiles, offset[:, 0], offset[:, 1])
        return self._exact[key]

    def _broken(self, fill: _Fill, tile: int, error: str) -> None:
        fill.broken = True
        self.tile_errors.setdefault(str(self.index.path[tile]), error)

    def _is_masked(
        self, tile: int, rows: slice, cols: slice, where: np.ndarray, *, through: int = 0
    ) -> bool:
        mask = self.reader.read_mask(tile, rows, cols, through=through)
        if mask is None:
            return False
        bad = mask != 0 if self.mask_bits is None else (mask & self.mask_bits) != 0
        return bool(bad[where].any())

    def _copy(self, fill: _Fill, tile: int, wx: int, wy: int, through: int) -> None:
        """Copy the part of a same-projection tile inside the stamp (window origin wx, wy)."""
        s, ny, nx = self.size, int(self.index.ny[tile]), int(self.index.nx[tile])
        rows, cols = slice(max(wy, 0), min(wy + s, ny)), slice(max(wx, 0), min(wx + s, nx))
        inner = (slice(rows.start - wy, rows.stop - wy), slice(cols.start - wx, cols.stop - wx))
        new = ~fill.filled[inner]
        if not new.any():
            return
        if not self.index.usable[tile]:
            self._broken(fill, tile, f"{self.index.reason[tile]}: {self.index.error[tile]}")
            return
        try:
            data = self.reader.read(tile, rows, cols, through=through)
            fill.masked |= self._is_masked(tile, rows, cols, new, through=through)
        except ImageError as exc:
            self._broken(fill, tile, f"{exc.reason}: {exc}")
            return
        target = fill.pixels[inner]
        target[new] = data[new]
        fill.filled[inner] = True

    def _resample(self, fill: _Fill, band: str, place: _Place) -> None:
        """Fill what is left from tiles with other projections, resampled onto ref's grid.

        Only the box around the pixels still missing is resampled; a masked pixel anywhere in
        the source window that box draws from masks the stamp.
        """
        tiles = self.band_tiles(band)
        tiles = tiles[self.index.projection[tiles] != self.index.projection[place.ref]]
        tiles = tiles[self.index.near(place.at, self._pad)[tiles]]
        if tiles.size == 0:
            return
        ys, xs = np.nonzero(~fill.filled)
        box = (slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1))
        shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
        grid = shifted(self.wcs(place.ref), place.x0 + box[1].start, place.y0 + box[0].start)
        resampled = Resampled(grid, shape)
        for tile in (int(t) for t in tiles):
            if not self.index.usable[tile]:
                self._broken(fill, tile, f"{self.index.reason[tile]}: {self.index.error[tile]}")
                continue
            ny, nx = int(self.index.ny[tile]), int(self.index.nx[tile])
            window = source_window(grid, shape, self.wcs(tile), ny=ny, nx=nx)
            if window is None:
                continue
            try:
                data = self.reader.read(tile, *window)
                fill.masked |= self._is_masked(tile, *window, np.ones(data.shape, dtype=bool))
            except ImageError as exc:
                self._broken(fill, tile, f"{exc.reason}: {exc}")
                continue
            resampled.add(data, self.wcs(tile), window)
        take = ~fill.filled[box] & resampled.covered()
        fill.pixels[box][take] = resampled.values()[take]
        fill.filled[box] |= take

    def stamp(self, band: str, place: _Place) -> tuple[np.ndarray, str]:
        """One band's stamp (float64 (size, size), the tiles' unit) at `place`, and "" or the
        reason it cannot be used."""
        s, ref = self.size, place.ref
        fill = _Fill(s)
        tiles, dx, dy = self._exact_sources(band, ref)
        wx, wy = place.x0 + dx, place.y0 + dy
        nx, ny = self.index.nx[tiles], self.index.ny[tiles]
        overlap = (wx < nx) & (wx + s > 0) & (wy < ny) & (wy + s > 0)
        inside = (wx >= 0) & (wy >= 0) & (wx + s <= nx) & (wy + s <= ny) & self.index.usable[tiles]
        for k in np.flatnonzero(overlap)[np.argsort(~inside[overlap], kind="stable")]:
            if fill.filled.all():
                break
            self._copy(fill, int(tiles[k]), int(wx[k]), int(wy[k]), place.through + int(dy[k]))
        if not fill.filled.all():
            self._resample(fill, band, place)
        if not fill.filled.all():
            if fill.broken:
                return fill.pixels, "unreadable_tile"
            return fill.pixels, "no_coverage" if not fill.filled[s // 2, s // 2] else "edge"
        if fill.masked:
            return fill.pixels, "masked"
        if not np.isfinite(fill.pixels).all():
            return fill.pixels, "non_finite"
        return fill.pixels, ""


def _run_ends(ref: np.ndarray, y0: np.ndarray, size: int) -> list[int]:
    """For stamps sorted by (tile, y0): the row where each one's run of overlapping stamps ends."""
    ends = (y0 + size).tolist()
    for i in range(len(ends) - 2, -1, -1):
        if ref[i + 1] == ref[i] and y0[i + 1] <= y0[i] + size:
            ends[i] = max(ends[i], ends[i + 1])
    return [int(e) for e in ends]


def _rows(ids: np.ndarray, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, ...]:
    ids, ra, dec = np.asarray(ids), np.asarray(ra, dtype=np.float64), np.asarray(dec, np.float64)
    if ids.dtype.kind not in "iu":
        raise CutoutError(f"ids must be integers (int64), got {ids.dtype}")
    if not ids.shape == ra.shape == dec.shape or ids.ndim != 1:
        raise CutoutError(f"ids {ids.shape}, ra {ra.shape}, dec {dec.shape}: need equal (N,)")
    return ids.astype(np.int64), ra, dec


def cut_stamps(
    ids: np.ndarray, ra: np.ndarray, dec: np.ndarray, *, index: TileIndex, config: ImagesConfig
) -> Stamps:
    """Cut every band's stamp for each row: ids int64 (N,), ra, dec float64 (N,) deg.

    Returns the stamps in nJy (pixel values times the unit factor) and the ids of the rows
    rejected, per reason (every reason of REASONS present, empty where none).
    """
    ids, ra, dec = _rows(ids, ra, dec)
    size, bands, factor = config.size, config.bands, unit_factor(config.unit)
    reason = np.zeros(ids.shape[0], dtype=np.int64)  # 0: cut, else 1 + position in REASONS
    sky = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    reason[~sky] = 1 + REASONS.index("bad_coordinates")
    images = np.zeros((ids.shape[0], len(bands), size, size), dtype=np.float32)
    with TileReader(
        index, max_open=config.max_open_tiles, storage_options=config.storage_options
    ) as reader:
        cutter = _Cutter(index, config, reader)
        first = cutter.band_tiles(bands[0])
        on_sky = np.flatnonzero(sky)
        ref, x, y = locate(
            index, first[index.usable[first]], ra[on_sky], dec[on_sky], wcs_of=cutter.wcs
        )
        lost = on_sky[ref < 0]
        held_by_bad, _, _ = locate(
            index, first[~index.usable[first]], ra[lost], dec[lost], wcs_of=cutter.wcs
        )
        reason[lost] = 1 + REASONS.index("no_coverage")
        reason[lost[held_by_bad >= 0]] = 1 + REASONS.index("unreadable_tile")
        for t in set(held_by_bad[held_by_bad >= 0].tolist()):
            cutter.tile_errors[str(index.path[t])] = f"{index.reason[t]}: {index.error[t]}"
        found = ref >= 0
        rows, ref = on_sky[found], ref[found]
        x0 = np.floor(x[found] + 0.5).astype(np.int64) - size // 2
        y0 = np.floor(y[found] + 0.5).astype(np.int64) - size // 2
        vectors = unit_vectors(ra[rows], dec[rows])
        order = np.lexsort((x0, y0, ref))  # tile by tile, top to bottom: reads stay local
        through = _run_ends(ref[order], y0[order], size)
        for k, reach in zip(order, through, strict=True):
            place = _Place(int(ref[k]), int(x0[k]), int(y0[k]), vectors[k], reach)
            for b, band in enumerate(bands):
                pixels, why = cutter.stamp(band, place)
                if why:
                    reason[rows[k]] = 1 + REASONS.index(why)
                    break
                images[rows[k], b] = pixels * factor
    kept = reason == 0
    rejected = {name: ids[reason == 1 + i] for i, name in enumerate(REASONS)}
    return Stamps(ids[kept], images[kept], rejected, cutter.tile_errors)
