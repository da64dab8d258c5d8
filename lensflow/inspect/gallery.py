"""A static HTML gallery of a scan's candidates, images embedded, to share without a server.

One self-contained file: each candidate's asinh RGB composite and its bands alone as PNG data
URIs, its rank, id, position, ensemble and member scores, p_lens where calibrated, and the
graders' consensus when a grades database is given. Nothing is fetched when it is opened.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from lensflow.inspect.consensus import Consensus
from lensflow.inspect.images import band_image, data_uri, png_bytes, rgb_image
from lensflow.inspect.ranked import ScanCandidates
from lensflow.io import write_text

logger = logging.getLogger(__name__)

RGB_SCALE = 3
"""Screen pixels per cutout pixel of a composite in the gallery (64 px cutouts: 192 px)."""


def render_gallery(
    candidates: ScanCandidates, *, agreed: Mapping[int, Consensus] | None = None
) -> str:
    """The gallery page as HTML text (images as data URIs)."""
    environment = Environment(
        loader=PackageLoader("lensflow.inspect", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    bands = candidates.store.bands
    cards = []
    for rank, row in enumerate(candidates.rows(), start=1):
        candidate_id = int(row["id"])
        cutout = candidates.cutout(candidate_id)
        rgb = png_bytes(rgb_image(cutout, bands=bands, rgb=candidates.rgb), scale=RGB_SCALE)
        cards.append(
            {
                "rank": rank,
                "id": str(candidate_id),
                "ra": row["ra"],
                "dec": row["dec"],
                "score": row["ensemble_score"],
                "p_lens": row.get("p_lens"),
                "members": {m: row.get(f"score_{m}") for m in candidates.members},
                "rgb": data_uri(rgb),
                "bands": {
                    band: data_uri(png_bytes(band_image(cutout, bands=bands, band=band)))
                    for band in bands
                },
                "consensus": (agreed or {}).get(candidate_id),
            }
        )
    template = environment.get_template("gallery.html")
    return template.render(
        scan=str(candidates.scan_dir),
        min_score=candidates.min_score,
        rgb=" ".join(candidates.rgb),
        cards=cards,
    )


def write_gallery(
    candidates: ScanCandidates, out: Path, *, agreed: Mapping[int, Consensus] | None = None
) -> int:
    """Write the gallery page to `out` (atomically); returns the candidates shown."""
    write_text(Path(out), render_gallery(candidates, agreed=agreed))
    logger.info("gallery of %d candidates written to %s", len(candidates), out)
    return len(candidates)
