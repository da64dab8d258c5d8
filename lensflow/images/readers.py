"""Reading windows of tiles: a few open files per partition task, only the pixels asked for.

`hdu.section[...]` reads just the window: for an fpack CompImageHDU it decompresses only the
compression tiles the window touches, for a plain image it reads only those rows. fpack's usual
compression tiles are whole image rows, so any window costs its rows at full width; for such
HDUs the reader decompresses a strip of full rows once and serves every window inside it
(the caller says how far down the next windows reach), so stamps that share rows share the work.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import numpy as np
from astropy.io import fits

from lensflow.errors import ImageError
from lensflow.images.index import TileIndex
from lensflow.images.tiles import open_fits

STRIP_PIXELS = 1 << 20
"""Most pixels one cached strip of full rows holds (4 MB of float32)."""


class TileReader:
    """Windows of the tiles of an index, keeping the `max_open` most recently used files open
    and twice as many strips of decompressed rows."""

    def __init__(
        self,
        index: TileIndex,
        *,
        max_open: int = 8,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.index = index
        self.max_open = max(1, max_open)
        self.storage_options = dict(storage_options or {})  # for tiles at a URL
        self._open: OrderedDict[str, fits.HDUList] = OrderedDict()
        self._strips: OrderedDict[tuple[int, int], tuple[int, np.ndarray]] = OrderedDict()
        self._row_tiled: dict[tuple[int, int], bool] = {}

    def _file(self, tile: int) -> fits.HDUList:
        path = str(self.index.path[tile])
        hdul = self._open.get(path)
        if hdul is not None:
            self._open.move_to_end(path)
            return hdul
        try:
            hdul = open_fits(path, self.storage_options)
        except Exception as exc:  # astropy raises OSError, ValueError, TypeError for broken files
            raise ImageError(f"{path}: cannot open ({exc})", reason="unreadable") from exc
        self._open[path] = hdul
        while len(self._open) > self.max_open:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return hdul

    def _is_row_tiled(self, tile: int, hdu: int) -> bool:
        key = (tile, hdu)
        if key not in self._row_tiled:
            image = self._file(tile)[hdu]
            self._row_tiled[key] = isinstance(image, fits.CompImageHDU) and int(
                image.tile_shape[-1]
            ) >= int(image.shape[-1])
        return self._row_tiled[key]

    def _strip_rows(self, tile: int, hdu: int, rows: slice, through: int) -> np.ndarray:
        """Full rows rows.start:rows.stop, from a cached strip or a new one reaching `through`."""
        key = (tile, hdu)
        cached = self._strips.get(key)
        if cached is not None:
            start, strip = cached
            if start <= rows.start and rows.stop <= start + strip.shape[0]:
                self._strips.move_to_end(key)
                return strip[rows.start - start : rows.stop - start]
        ny, nx = int(self.index.ny[tile]), int(self.index.nx[tile])
        longest = max(rows.stop - rows.start, STRIP_PIXELS // max(nx, 1))
        stop = min(ny, max(rows.stop, min(through, rows.start + longest)))
        strip = np.asarray(self._file(tile)[hdu].section[rows.start : stop, :])
        self._strips[key] = (rows.start, strip)
        while len(self._strips) > 2 * self.max_open:
            self._strips.popitem(last=False)
        return strip[: rows.stop - rows.start]

    def _window(self, tile: int, hdu: int, rows: slice, cols: slice, through: int) -> np.ndarray:
        path = str(self.index.path[tile])
        try:
            if self._is_row_tiled(tile, hdu):
                return self._strip_rows(tile, hdu, rows, through)[:, cols]
            return np.asarray(self._file(tile)[hdu].section[rows, cols])
        except ImageError:
            raise
        except Exception as exc:  # truncated or corrupt data: OSError, TypeError, ValueError
            raise ImageError(
                f"{path}[{hdu}]: cannot read rows {rows.start}:{rows.stop}, columns "
                f"{cols.start}:{cols.stop} ({type(exc).__name__}: {exc})",
                reason="unreadable",
            ) from exc

    def read(self, tile: int, rows: slice, cols: slice, *, through: int = 0) -> np.ndarray:
        """Image pixels of a window inside the tile, float64 (rows, cols), the tile's unit.

        `through`: the row (exclusive) down to which the next windows of this tile reach, so
        a strip read now can serve them; 0 when unknown.
        """
        hdu = int(self.index.hdu[tile])
        return self._window(tile, hdu, rows, cols, through).astype(np.float64)

    def read_mask(
        self, tile: int, rows: slice, cols: slice, *, through: int = 0
    ) -> np.ndarray | None:
        """Mask bits of a window (int64 (rows, cols)), or None when the tile has no mask."""
        hdu = int(self.index.mask_hdu[tile])
        if hdu < 0:
            return None
        return self._window(tile, hdu, rows, cols, through).astype(np.int64)

    def close(self) -> None:
        """Close every open file and drop the cached strips."""
        self._strips.clear()
        while self._open:
            _, hdul = self._open.popitem()
            hdul.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
