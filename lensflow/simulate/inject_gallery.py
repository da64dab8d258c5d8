"""A before/after gallery of an injection set: each injected lens beside its deflector's cutout.

Asinh RGB composites of the profile's three reddest image bands (`lensflow.simulate.gallery`)
of the central half of each cutout (where the arcs are), the same stretch for both panels of a
pair, pairs laid out four to a row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zarr

from lensflow.cutouts import list_groups, open_store, read_cutouts
from lensflow.errors import SimulationError
from lensflow.io import write_atomic
from lensflow.simulate.gallery import asinh_rgb
from lensflow.surveys import Survey, survey_profile

PANEL_INCHES = 1.2
PAIRS_PER_ROW = 4
DPI = 100


def _images_of(store: Path, ids: np.ndarray) -> dict[int, np.ndarray]:
    """Cutouts of the given ids, wherever in the store's groups they are: id -> (bands, n, n)."""
    found: dict[int, np.ndarray] = {}
    root: Any = zarr.open_group(str(store), mode="r")
    for group in list_groups(store):
        held = np.asarray(root[group]["ids"][:], dtype=np.int64)
        wanted = ids[np.isin(ids, held)]
        if wanted.size:
            got = read_cutouts(store, group, wanted)
            found.update({int(i): im for i, im in zip(got.ids, got.images, strict=True)})
    return found


def injection_gallery(
    out_png: Path,
    injected: Path,
    *,
    n: int = 16,
    survey: Survey | None = None,
    source_store: Path | None = None,
) -> Path:
    """Write a PNG of the first n injected lenses (by id) of the set in folder `injected`, each
    after its deflector's original cutout; returns its path. source_store: the store injected
    into (default: the one the set records); survey: the profile whose bands' wavelengths pick
    the RGB bands (default lsst)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    injected = Path(injected)
    store = injected / "cutouts.zarr"
    info = open_store(store)
    attrs: dict[str, Any] = dict(zarr.open_group(str(store), mode="r").attrs)
    record: dict[str, Any] = dict(attrs.get("injection", {}))
    source = Path(source_store or record.get("source_store", ""))
    if not source.exists():
        raise SimulationError(f"{store}: the store it was injected into is not at {source!s}")
    labels = pq.read_table(
        injected / "labels.parquet", columns=["id", "is_lens", "deflector_id", "theta_e"]
    )
    lenses = labels.filter(labels["is_lens"]).sort_by("id").slice(0, max(n, 1))
    if lenses.num_rows == 0:
        raise SimulationError(f"{injected}: no injected lens to show")
    ids = lenses["id"].to_numpy()
    deflector_ids = pc.fill_null(lenses["deflector_id"], -1).to_numpy()
    after = _images_of(store, ids)
    before = _images_of(source, np.unique(deflector_ids))
    rgb = (survey or survey_profile()).rgb_bands()
    rows = -(-lenses.num_rows // PAIRS_PER_ROW)
    cols = 2 * min(PAIRS_PER_ROW, lenses.num_rows)
    fig = Figure(figsize=(cols * PANEL_INCHES, rows * (PANEL_INCHES + 0.2)), dpi=DPI)
    theta = lenses["theta_e"].to_numpy()
    size = info.cutout_size
    for k, (ident, deflector) in enumerate(zip(ids, deflector_ids, strict=True)):
        pair = (before.get(int(deflector)), after[int(ident)])
        stretch = max(30.0, float(np.percentile(pair[1], 99.5)) / 3.0)
        for side, image in enumerate(pair):
            ax = fig.add_subplot(rows, cols, 2 * k + side + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if image is not None:
                centre = image[:, size // 4 : size - size // 4, size // 4 : size - size // 4]
                composite = asinh_rgb(centre, bands=info.bands, rgb=rgb, stretch=stretch)
                ax.imshow(composite, interpolation="nearest")
            ax.set_title("before" if side == 0 else f"theta_E {theta[k]:.2f}''", fontsize=7, pad=2)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.95, wspace=0.05, hspace=0.25)
    out_png = Path(out_png)
    write_atomic(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, facecolor="white"))
    return out_png
