"""The static gallery: one HTML file, every image inside it, the candidates ranked."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image

from lensflow.inspect.consensus import consensus
from lensflow.inspect.gallery import RGB_SCALE, write_gallery
from lensflow.inspect.grades import GradeBook
from lensflow.inspect.ranked import ScanCandidates


def test_the_gallery_carries_its_images(candidates: ScanCandidates, tmp_path: Path) -> None:
    top = ScanCandidates(candidates.scan_dir, top=5, min_score=0.0)
    out = tmp_path / "gallery.html"
    assert write_gallery(top, out) == 5
    html = out.read_text()
    sources = re.findall(r'<img[^>]* src="([^"]+)"', html)
    assert len(sources) == 5 * (1 + len(top.store.bands))
    assert all(s.startswith("data:image/png;base64,") for s in sources)  # nothing fetched
    assert not re.search(r'(src|href)="(https?:|/)', html)
    shown = re.findall(r'id="candidate-(-?\d+)"', html)
    assert [int(i) for i in shown] == top.ids
    first = Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1])))
    assert np.asarray(first).shape == (top.store.cutout_size * RGB_SCALE,) * 2 + (3,)


def test_the_gallery_shows_the_consensus(candidates: ScanCandidates, tmp_path: Path) -> None:
    top = ScanCandidates(candidates.scan_dir, top=2, min_score=0.0)
    book = GradeBook(f"sqlite:///{tmp_path / 'g.sqlite'}")
    book.add(top.ids[0], grader="ann", grade="A")
    book.add(top.ids[0], grader="bob", grade="B")
    write_gallery(top, tmp_path / "g.html", agreed=consensus(book.history()))
    html = (tmp_path / "g.html").read_text()
    assert "grade A (mean 2.50 ±0.50, 2 graders)" in html
    assert html.count("graders)") == 1
