"""The scan config: validated, unknown keys refused by name, paths relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lensflow.config import ImagesConfig, PlanConfig, ScanConfig, SkyConfig
from lensflow.errors import ConfigError

GOOD = """
[catalog]
path = "sky/catalog"
[catalog.columns]
id = "objID"
ra = "raStack"
dec = "decStack"
mag_g = "gKronMag"
mag_r = "rKronMag"
mag_i = "iKronMag"
mag_z = "zKronMag"
[cuts]
expression = "rKronMag < 21.5 and rPSFMag - rKronMag > 0.05 and not isnan(gKronMag)"
[cutouts]
path = "sky/cutouts.zarr"
[ensemble]
threshold = 0.7
"""


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "scan.toml"
    path.write_text(GOOD)
    config = ScanConfig.from_toml(path)
    assert config.catalog.path == (tmp_path / "conf" / "sky" / "catalog").resolve()
    assert config.cutouts.path == (tmp_path / "conf" / "sky" / "cutouts.zarr").resolve()
    assert config.ensemble.threshold == 0.7
    assert config.photometry.threshold is None


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (GOOD.replace("[cuts]", "[cuts]\nexpresion = 'true'"), "cuts.expresion"),
        (GOOD.replace("mag_z", "mag-y"), "mag-y"),
        (GOOD + "\n[clustr]\nn_workers = 2\n", "clustr"),
        (GOOD.replace("threshold = 0.7", "threshold = 1.7"), "ensemble.threshold"),
        (GOOD.replace('id = "objID"\n', ""), "catalog.columns.id"),
        (GOOD + "\n[modelling]\nmin_score = 1.5\n", "modelling.min_score"),
        (GOOD + "\n[modelling]\nenabled = 'sometimes'\n", "modelling.enabled"),
        (GOOD + "\n[modelling]\nmin_scor = 0.5\n", "modelling.min_scor"),
    ],
)
def test_bad_keys_and_values_are_named(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "scan.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        ScanConfig.from_toml(path)


def test_modelling_defaults_to_the_manifest_and_the_ensemble_threshold(tmp_path: Path) -> None:
    path = tmp_path / "scan.toml"
    path.write_text(GOOD)
    config = ScanConfig.from_toml(path)
    assert (config.modelling.enabled, config.modelling.min_score) == (None, None)
    path.write_text(GOOD + "\n[modelling]\nenabled = false\nmin_score = 0.8\n")
    config = ScanConfig.from_toml(path)
    assert (config.modelling.enabled, config.modelling.min_score) == (False, 0.8)
    assert config.to_toml_dict()["modelling"] == {"enabled": False, "min_score": 0.8}


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no scan config here"):
        ScanConfig.from_toml(tmp_path / "absent.toml")
    (tmp_path / "bad.toml").write_text("[catalog\npath=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ScanConfig.from_toml(tmp_path / "bad.toml")


def test_plan_needs_only_catalog_and_cuts(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(GOOD.split("[cutouts]")[0])
    config = PlanConfig.from_toml(path)
    assert config.catalog.columns.ra == "raStack"
    with pytest.raises(ConfigError):
        ScanConfig.from_toml(path)


def _refusal(tmp_path: Path, text: str, kind: type[PlanConfig] = ScanConfig) -> str:
    path = tmp_path / "scan.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        kind.from_toml(path)
    return str(caught.value)


def test_any_band_may_be_mapped(tmp_path: Path) -> None:
    path = tmp_path / "scan.toml"
    path.write_text(GOOD.replace('mag_z = "zKronMag"', 'mag_y = "yKronMag"\nmagerr_N921 = "e921"'))
    columns = ScanConfig.from_toml(path).catalog.columns
    assert columns.mapped()["mag_y"] == "yKronMag" and columns.mapped()["magerr_N921"] == "e921"
    assert "mag_z" not in columns.mapped()
    with pytest.raises(ConfigError, match=r"has no mag_z; the gate needs it"):
        columns.require(["mag_g", "mag_z"], needed_by="the gate")


def test_morphology_columns_may_be_mapped_for_any_band(tmp_path: Path) -> None:
    morphology = 'psfmag_g = "gPSFMag"\nsize_N921 = "r921"\nextendedness = "ext"\n'
    path = tmp_path / "scan.toml"
    path.write_text(GOOD.replace('mag_z = "zKronMag"\n', f'mag_z = "zKronMag"\n{morphology}'))
    columns = ScanConfig.from_toml(path).catalog.columns
    mapped = columns.mapped()
    assert (mapped["psfmag_g"], mapped["size_N921"], mapped["extendedness"]) == (
        "gPSFMag",
        "r921",
        "ext",
    )
    columns.require(["mag_g", "psfmag_g", "size_N921", "extendedness"], needed_by="the gate")
    with pytest.raises(ConfigError, match=r"has no size_g, psfmag_r; the gate needs them"):
        columns.require(["psfmag_g", "size_g", "psfmag_r"], needed_by="the gate")
    for wrong, meant in (("psf_mag_g", "psfmag_g"), ("Size-r", "size_r"), ("sizes_r", "size_r")):
        text = GOOD.replace('mag_z = "zKronMag"', f'{wrong} = "x"')
        assert f"did you mean catalog.columns.{meant}?" in _refusal(tmp_path, text)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "mag_g =",
            "mag-g =",
            "unknown key catalog.columns.mag-g; did you mean catalog.columns.mag_g?",
        ),
        ("id =", "ids =", "unknown key catalog.columns.ids; did you mean catalog.columns.id?"),
        ("[cuts]", "[cut]", "unknown section [cut]; did you mean [cuts]?"),
        ("[catalog.columns]", "[catalog.column]", "unknown section [catalog.column]; did you mean"),
        ("threshold = 0.7", "treshold = 0.7", "unknown key ensemble.treshold; did you mean "),
    ],
)
def test_unknown_names_are_refused_with_the_closest_known_one(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = GOOD.replace(old, new, 1)
    assert message in _refusal(tmp_path, text)
    assert message in _refusal(tmp_path, text, PlanConfig)


def test_one_mistake_is_one_line(tmp_path: Path) -> None:
    message = _refusal(tmp_path, GOOD.replace("[cuts]", "[cut]"))
    assert message == f"{tmp_path / 'scan.toml'}: unknown section [cut]; did you mean [cuts]?"


def test_plan_needs_only_the_catalog_path_and_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text('[catalog]\npath = "cat"\n[catalog.columns]\nid = "i"\nra = "r"\ndec = "d"\n')
    config = PlanConfig.from_toml(path)
    assert config.catalog.columns.mapped() == {"id": "i", "ra": "r", "dec": "d"}
    assert config.cuts.expression == "true" and config.sky is None and config.cutouts is None
    assert "missing key catalog.columns.dec" in _refusal(
        tmp_path, path.read_text().replace('dec = "d"\n', ""), PlanConfig
    )


def test_plan_reads_a_full_scan_config(tmp_path: Path) -> None:
    path = tmp_path / "scan.toml"
    path.write_text(GOOD + "[sky]\ncone = [150.0, 2.0, 0.5]\n[cluster]\nn_workers = 2\n")
    config = PlanConfig.from_toml(path)
    assert config.cutouts is not None and config.sky == SkyConfig(cone=(150.0, 2.0, 0.5))


@pytest.mark.parametrize(
    ("sky", "message"),
    [
        ("cone = [150, 2, 0.5]\npixels = ['3/1']", "sky: give exactly one of"),
        ("", "sky: give exactly one of cone, polygon, moc, pixels (found none)"),
        ("cone = [150, 95, 0.5]", "sky.cone: declination must be in the -90.0 to 90.0"),
        ("cone = [150, 2, 0]", "sky.cone: cone radius must be in (0, 180] degrees"),
        ("cone = [150, 2]", "sky.cone: too few values"),
        ("polygon = [[1, 2], [2, 2]]", "sky.polygon: polygon must have at least 3 vertices"),
        (
            "polygon = [[0, 0], [2, 0], [1, 0.1], [2, 2], [0, 2]]",
            "sky.polygon: polygon must be convex",
        ),
        ("pixels = ['3/768']", "sky.pixels: pixel 768 does not exist at order 3"),
        ("pixels = []", "sky.pixels: pixels must name at least one pixel"),
        ("cones = [1, 2, 3]", "unknown key sky.cones; did you mean sky.cone?"),
    ],
)
def test_bad_regions_are_refused_by_name(tmp_path: Path, sky: str, message: str) -> None:
    assert message in _refusal(tmp_path, f"{GOOD}[sky]\n{sky}\n")


def test_regions_round_trip_and_a_moc_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "scan.toml"
    for sky, expected in (
        ('moc = "regions/field.fits"', SkyConfig(moc=(tmp_path / "conf/regions/field.fits"))),
        ("polygon = [[1, 2], [3, 2], [2, 4]]", SkyConfig(polygon=((1, 2), (3, 2), (2, 4)))),
        ("pixels = ['3/0123', ' 4/511']", SkyConfig(pixels=("3/123", "4/511"))),
    ):
        path.write_text(f"{GOOD}[sky]\n{sky}\n")
        config = ScanConfig.from_toml(path)
        assert config.sky == expected
        again = ScanConfig.from_dict(config.to_toml_dict(), base=tmp_path)
        assert again == config


def _images(tmp_path: Path, **images: object) -> ImagesConfig:
    raw = {
        "catalog": {"path": "catalog", "columns": {"id": "id", "ra": "ra", "dec": "dec"}},
        "images": images,
    }
    config = PlanConfig.from_dict(raw, base=tmp_path).images
    assert config is not None
    return config


def test_images_resolve_relative_tiles_and_refuse_bad_keys(tmp_path: Path) -> None:
    raw = {"tiles": "coadds/*/calexp-{band}-*.fits.fz", "bands": ["g", "r"], "size": 33}
    config = _images(tmp_path, **raw)
    assert config.pattern("r") == str(tmp_path.resolve() / "coadds/*/calexp-r-*.fits.fz")
    assert config.hdu is None and config.unit == "nJy"
    with pytest.raises(ConfigError, match="sizee"):
        _images(tmp_path, **raw, sizee=3)
    with pytest.raises(ConfigError, match="unit"):
        _images(tmp_path, **{**raw, "unit": "mJy"})
    with pytest.raises(ConfigError, match=r"\{band\}"):
        _images(tmp_path, **{**raw, "tiles": "coadds/*.fits"})
    with pytest.raises(ConfigError, match="unknown bands"):
        _images(tmp_path, **raw, psf_fwhm_arcsec={"z": 0.7})


def test_images_section_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "scan.toml"
    path.write_text(
        '[catalog]\npath = "catalog"\n[catalog.columns]\nid = "id"\nra = "ra"\ndec = "dec"\n'
        '[images]\ntiles = "t/{band}.fits"\nbands = ["i"]\nhdu = "IMAGE"\n'
    )
    config = PlanConfig.from_toml(path).images
    assert config is not None and config.hdu == "IMAGE"
    assert config.tiles == str(tmp_path.resolve() / "t/{band}.fits")


def test_catalog_and_tiles_may_be_urls_kept_as_written(tmp_path: Path) -> None:
    path = tmp_path / "scan.toml"
    path.write_text(
        GOOD.replace('path = "sky/catalog"', 'path = "s3://bucket/surveys/catalog"')
        .replace(
            "[catalog.columns]",
            '[catalog.storage_options]\nendpoint_url = "http://127.0.0.1:9000"\nanon = false\n'
            "[catalog.columns]",
        )
        .replace(
            "[cuts]", '[images]\ntiles = "https://host/t/{band}.fits.fz"\nbands = ["g"]\n[cuts]'
        )
    )
    config = ScanConfig.from_toml(path)
    assert config.catalog.path == "s3://bucket/surveys/catalog"
    assert config.catalog.storage_options == {
        "endpoint_url": "http://127.0.0.1:9000",
        "anon": False,
    }
    assert config.images is not None and config.images.tiles == "https://host/t/{band}.fits.fz"
    assert config.cutouts.path == (tmp_path / "sky" / "cutouts.zarr").resolve()
    again = ScanConfig.from_dict(config.to_toml_dict(), base=tmp_path / "elsewhere")
    assert again == config
    local = GOOD.replace('path = "sky/catalog"', f'path = "file://{tmp_path}/cat"')
    path.write_text(local)
    assert ScanConfig.from_toml(path).catalog.path == tmp_path / "cat"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ('path = "htps://bucket/catalog"', "unknown URL scheme 'htps'"),
        ('path = "s3://b/c"\nstorage_options = { secret = "x" }', "credentials are not read"),
        ('path = "s3://b/c"\nstorage_options = { key = "AKIA" }', "storage_options key"),
    ],
)
def test_bad_urls_and_credentials_in_the_file_are_refused(
    tmp_path: Path, change: str, named: str
) -> None:
    path = tmp_path / "scan.toml"
    path.write_text(GOOD.replace('path = "sky/catalog"', change))
    with pytest.raises(ConfigError, match=named):
        ScanConfig.from_toml(path)


def test_the_members_run_at_float32_unless_int8_is_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "scan.toml"
    path.write_text(GOOD)
    assert ScanConfig.from_toml(path).ensemble.precision == "float32"
    path.write_text(GOOD.replace("threshold = 0.7", 'threshold = 0.7\nprecision = "int8"'))
    assert ScanConfig.from_toml(path).ensemble.precision == "int8"
    path.write_text(GOOD.replace("threshold = 0.7", 'threshold = 0.7\nprecision = "int4"'))
    with pytest.raises(ConfigError, match=r"ensemble\.precision"):
        ScanConfig.from_toml(path)
