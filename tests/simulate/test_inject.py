"""Injection sets: lensed sources painted onto real cutouts, checked against the lensing engine,
the deflectors' photometry and the store they came from."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr
from distributed import Client

from lensflow.cutouts import create_store, list_groups, read_group, write_group
from lensflow.errors import CutExpressionError, SimulationError
from lensflow.simulate.cosmology import einstein_radius
from lensflow.simulate.inject import DEFAULT_WHERE, injection_rng, make_injection_set
from lensflow.simulate.inject_deflectors import FaberJackson
from lensflow.simulate.inject_gallery import injection_gallery
from lensflow.simulate.inject_paint import InjectionPrior
from lensflow.simulate.lensing import SIE, ExternalShear, LensModel
from lensflow.simulate.observe import convolve, psf_kernel
from lensflow.simulate.render import pixel_centres, render_midpoint
from lensflow.simulate.sersic import SersicEllipse
from lensflow.surveys import ab_to_njy, survey_profile
from tests.simulate.inject_store import RED_Z, InjectionStore, make_injection_store

NO_CLUMPS = InjectionPrior(n_clumps=(0, 1))


@pytest.fixture(scope="module")
def deflectors(tmp_path_factory: pytest.TempPathFactory) -> InjectionStore:
    return make_injection_store(tmp_path_factory.mktemp("deflectors"))


def _all_cutouts(store: Path) -> dict[int, np.ndarray]:
    found: dict[int, np.ndarray] = {}
    for group in list_groups(store):
        ids, images = read_group(store, group)
        found.update(zip(ids.tolist(), images, strict=True))
    return found


def _lenses(folder: Path) -> list[dict[str, object]]:
    table = pq.read_table(folder / "labels.parquet")
    return [r for r in table.to_pylist() if r["is_lens"]]


def test_the_deflectors_are_the_red_galaxies_by_their_own_pixels(
    deflectors: InjectionStore, tmp_path: Path
) -> None:
    made = make_injection_set(
        deflectors.store,
        tmp_path,
        n_lenses=6,
        seed=1,
        labels=deflectors.classes_only,
        progress=False,
    )
    assert made.photometry == "aperture" and made.gain == "profile lsst"
    assert made.n_deflectors == int(deflectors.red.sum())
    lenses = _lenses(tmp_path)
    assert {r["deflector_id"] for r in lenses} <= set(deflectors.ids[deflectors.red].tolist())
    for row in lenses:
        k = deflectors.ids.tolist().index(row["deflector_id"])
        assert row["z_lens"] == pytest.approx(RED_Z, abs=0.05)  # the colour proxy
        assert row["z_lens_from_colour"] == 1.0
        assert row["lens_mag_r"] == pytest.approx(deflectors.mag_r[k], abs=0.3)  # 3'' aperture
    record = dict(zarr.open_group(str(made.store), mode="r").attrs)["injection"]
    assert record["where"] == DEFAULT_WHERE and record["n_lenses"] == len(lenses)


def test_injected_flux_is_the_painted_models_magnified_flux(
    deflectors: InjectionStore, tmp_path: Path
) -> None:
    make_injection_set(
        deflectors.store, tmp_path, n_lenses=8, seed=2, labels=deflectors.catalog, progress=False
    )
    before, after = _all_cutouts(deflectors.store), _all_cutouts(tmp_path / "cutouts.zarr")
    lenses = _lenses(tmp_path)
    assert len(lenses) == 8
    gain = survey_profile("lsst").gain("r")
    for row in lenses:
        added = float((after[row["id"]][1] - before[row["deflector_id"]][1]).sum())
        model = float(row["arc_flux_r"])
        assert model == pytest.approx(
            ab_to_njy(float(row["source_mag_r"])) * float(row["magnification"]),
            rel=1e-9,
        )
        noise = np.sqrt(model / gain)
        assert abs(added - model) < 5.0 * noise + 0.005 * model, (added, model)


def test_noise_free_injection_adds_exactly_the_lensed_source(
    deflectors: InjectionStore, tmp_path: Path
) -> None:
    make_injection_set(
        deflectors.store,
        tmp_path,
        n_lenses=4,
        seed=3,
        labels=deflectors.catalog,
        noise=False,
        prior=NO_CLUMPS,
        progress=False,
    )
    before, after = _all_cutouts(deflectors.store), _all_cutouts(tmp_path / "cutouts.zarr")
    lsst = survey_profile("lsst")
    for row in _lenses(tmp_path):
        p = {k: float(v) for k, v in row.items() if isinstance(v, float)}
        lens = LensModel(
            (
                SIE(p["theta_e"], p["lens_e1"], p["lens_e2"], p["lens_x"], p["lens_y"]),
                ExternalShear(p["gamma_ext1"], p["gamma_ext2"], p["lens_x"], p["lens_y"]),
            )
        )
        source = SersicEllipse.from_flux(
            1.0, p["source_r_sersic"], p["source_n_sersic"], p["source_e1"], p["source_e2"],
            p["source_x"], p["source_y"],
        )  # fmt: skip
        unit = render_midpoint(source, n=64, pixel_scale=0.2, supersample=20, lens=lens)
        flux = np.array([p[f"arc_flux_{b}"] / p["magnification"] for b in lsst.bands])
        kernels = np.stack([psf_kernel("moffat", lsst.psf_fwhm_arcsec[b], 0.2) for b in lsst.bands])
        expected = convolve(flux[:, None, None] * unit[None], kernels)
        added = after[row["id"]].astype(np.float64) - before[row["deflector_id"]]
        assert np.abs(added - expected).max() < 0.01 * expected.max()
        assert added.sum() == pytest.approx(expected.sum(), rel=0.01)


def test_the_arcs_peak_near_the_einstein_radius(deflectors: InjectionStore, tmp_path: Path) -> None:
    ring = replace(NO_CLUMPS, source_beta_max=0.05)
    make_injection_set(
        deflectors.store,
        tmp_path,
        n_lenses=6,
        seed=4,
        labels=deflectors.catalog,
        noise=False,
        prior=ring,
        progress=False,
    )
    before, after = _all_cutouts(deflectors.store), _all_cutouts(tmp_path / "cutouts.zarr")
    c = pixel_centres(64, 0.2)
    gx, gy = np.meshgrid(c, c)
    for row in _lenses(tmp_path):
        added = after[row["id"]][1].astype(np.float64) - before[row["deflector_id"]][1]
        iy, ix = np.unravel_index(np.argmax(added), added.shape)
        radius = np.hypot(gx[iy, ix] - row["lens_x"], gy[iy, ix] - row["lens_y"])
        theta_e = float(row["theta_e"])
        assert abs(radius - theta_e) < 0.2 * theta_e + 0.2, (radius, theta_e)


def test_theta_e_grows_with_the_deflectors_luminosity(
    deflectors: InjectionStore, tmp_path: Path
) -> None:
    relation = FaberJackson(scatter_dex=0.0)
    fixed = replace(NO_CLUMPS, z_source=(2.0, 2.0))
    make_injection_set(
        deflectors.store,
        tmp_path,
        n_lenses=int(deflectors.red.sum()),
        seed=5,
        labels=deflectors.catalog,
        prior=fixed,
        relation=relation,
        progress=False,
    )
    lenses = sorted(_lenses(tmp_path), key=lambda r: r["lens_mag_r"])
    assert len({r["deflector_id"] for r in lenses}) == len(lenses) >= 5
    theta = [float(r["theta_e"]) for r in lenses]
    assert all(a > b for a, b in itertools.pairwise(theta))
    for row in lenses:
        mag, z = float(row["lens_mag_r"]), float(row["z_lens"])
        assert z == RED_Z and row["z_lens_from_colour"] == 0.0  # the catalog's
        sigma = relation.sigma_kms(mag, z)
        assert row["sigma_v"] == pytest.approx(sigma, rel=1e-12)
        assert row["theta_e"] == pytest.approx(einstein_radius(sigma, z, 2.0), rel=1e-12)
    # Faber-Jackson: L ~ sigma^4, so 2.5 mag brighter is 10^(1/4) x sigma
    assert relation.sigma_kms(17.0, 0.3) / relation.sigma_kms(19.5, 0.3) == pytest.approx(
        10**0.25, rel=1e-9
    )


def test_non_lenses_are_the_untouched_originals(deflectors: InjectionStore, tmp_path: Path) -> None:
    made = make_injection_set(
        deflectors.store, tmp_path, n_lenses=3, seed=6, labels=deflectors.catalog, progress=False
    )
    labels = pq.read_table(made.labels).to_pylist()
    non_lenses = {r["id"]: r for r in labels if not r["is_lens"]}
    assert sorted(non_lenses) == deflectors.ids.tolist()
    before, after = _all_cutouts(deflectors.store), _all_cutouts(made.store)
    for ident, row in non_lenses.items():
        assert np.array_equal(after[ident], before[ident])
        k = deflectors.ids.tolist().index(ident)
        assert row["class"] == ("elliptical" if deflectors.red[k] else "disc_face_on")
        assert row["theta_e"] is None and row["deflector_id"] is None
    lens_ids = [r["id"] for r in labels if r["is_lens"]]
    assert min(lens_ids) > deflectors.ids.max()
    dropped = make_injection_set(
        deflectors.store,
        tmp_path / "dropped",
        n_lenses=3,
        seed=6,
        labels=deflectors.catalog,
        drop_deflectors=True,
        progress=False,
    )
    used = {r["deflector_id"] for r in _lenses(tmp_path / "dropped")}
    kept = {r["id"] for r in pq.read_table(dropped.labels).to_pylist() if not r["is_lens"]}
    assert kept == set(deflectors.ids.tolist()) - used and used


def test_same_seed_same_set_whatever_the_chunking(
    deflectors: InjectionStore, tmp_path: Path, dask_client: Client
) -> None:
    options = {"n_lenses": 5, "labels": deflectors.catalog, "progress": False}
    here = make_injection_set(deflectors.store, tmp_path / "a", seed=7, chunk_size=2, **options)
    there = make_injection_set(
        deflectors.store, tmp_path / "b", seed=7, chunk_size=3, client=dask_client, **options
    )
    assert pq.read_table(here.labels).equals(pq.read_table(there.labels))
    a, b = _all_cutouts(here.store), _all_cutouts(there.store)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    other = make_injection_set(deflectors.store, tmp_path / "c", seed=8, **options)
    theta = {r["theta_e"] for r in _lenses(tmp_path / "a")}
    assert theta.isdisjoint(r["theta_e"] for r in _lenses(tmp_path / "c"))
    assert other.n_lenses == 5
    assert injection_rng(7, 3).random() == injection_rng(7, 3).random()


def test_a_store_without_psf_or_with_unknown_bands_is_refused(
    deflectors: InjectionStore, tmp_path: Path
) -> None:
    ids, images = read_group(deflectors.store, "a")
    odd = tmp_path / "odd.zarr"
    create_store(
        odd,
        bands=["g", "r", "N921"],
        pixel_scale_arcsec=0.2,
        psf_fwhm_arcsec={"g": 0.8, "r": 0.7, "N921": 0.7},
        cutout_size=64,
    )
    write_group(odd, "a", ids=ids, images=images)
    with pytest.raises(
        SimulationError, match=r"bands \['N921'\] are not in survey profile 'lsst'"
    ) as err:
        make_injection_set(odd, tmp_path / "out", n_lenses=1, seed=0, progress=False)
    assert "\n" not in str(err.value)
    blind = tmp_path / "blind.zarr"
    create_store(blind, **survey_profile("lsst").store_attributes())
    write_group(blind, "a", ids=ids, images=images)
    root = zarr.open_group(str(blind), mode="r+")
    root.attrs["psf_fwhm_arcsec"] = {"g": 0.85}
    with pytest.raises(SimulationError, match=r"no psf_fwhm_arcsec for bands \['r', 'i'\]") as err:
        make_injection_set(blind, tmp_path / "out", n_lenses=1, seed=0, progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(CutExpressionError, match="mag_q"):
        make_injection_set(
            deflectors.store, tmp_path / "out", n_lenses=1, seed=0, where="mag_q < 20"
        )
    assert not (tmp_path / "out").exists()


def test_the_gallery_shows_each_injection_beside_its_deflector(
    deflectors: InjectionStore, tmp_path: Path
) -> None:
    made = make_injection_set(
        deflectors.store, tmp_path, n_lenses=3, seed=9, labels=deflectors.catalog, progress=False
    )
    png = injection_gallery(tmp_path / "gallery.png", made.store.parent, n=16)
    assert png.read_bytes()[:4] == b"\x89PNG"
