"""Tests for sciconv.postprocess: instances, measure, catalogs, products."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from sciconv import postprocess
from sciconv.errors import ConfigError, InvalidImageError, OutputExistsError


def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _touching_discs(shape=(48, 64)):
    a, b = _disc(shape, 24, 20, 10), _disc(shape, 24, 38, 10)  # centres 18 px apart: they overlap
    return a, b


def _two_class(foreground):
    fg = foreground.astype(np.float32)
    return np.stack([1 - fg, fg], axis=-1)


# --------------------------------------------------------------------------------------------------
# instances


def test_watershed_separates_two_touching_discs():
    a, b = _touching_discs()
    labels = postprocess.instances(_two_class(a | b))
    assert labels.dtype == np.int32
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2]
    # each disc centre in its own object, each object about one disc
    la, lb = labels[24, 20], labels[24, 38]
    assert la != lb and la > 0 and lb > 0
    for lab, disc in ((la, a), (lb, b)):
        inter = np.sum((labels == lab) & disc)
        assert inter / np.sum(labels == lab) > 0.9
    assert postprocess.instances(_two_class(a | b), method="connected").max() == 1


def test_elongated_object_is_not_oversegmented():
    yy, xx = np.mgrid[:60, :80]
    ellipse = ((xx - 40) / 30.0) ** 2 + ((yy - 30) / 8.0) ** 2 <= 1
    assert postprocess.instances(ellipse.astype(np.float32)).max() == 1


def test_three_class_interior_seeds_split_touching_squares():
    truth = np.zeros((40, 40), np.int32)
    truth[5:20, 5:20] = 1
    truth[5:20, 20:35] = 2  # touching along column 20
    from skimage.segmentation import find_boundaries

    boundary = find_boundaries(truth, mode="inner") & (truth > 0)
    interior = (truth > 0) & ~boundary
    prob = np.stack([truth == 0, interior, boundary], axis=-1).astype(np.float32)
    labels = postprocess.instances(prob)
    assert labels.max() == 2
    for t in (1, 2):
        found = np.bincount(labels[truth == t]).argmax()
        iou = np.sum((labels == found) & (truth == t)) / np.sum((labels == found) | (truth == t))
        assert iou > 0.9


def test_small_objects_removed_nan_is_background_labels_sequential():
    fg = np.zeros((30, 30), np.float32)
    fg[2:4, 2:4] = 1  # 4 px
    fg[10:20, 10:20] = 1
    fg[25:28, 2:9] = 1  # 21 px
    fg[0, 29] = np.nan
    labels = postprocess.instances(fg, min_size=5, method="connected")
    assert labels.max() == 2 and labels[3, 3] == 0 and labels[0, 29] == 0
    assert np.bincount(labels.ravel()).tolist()[1:] == [100, 21]


def test_default_min_size_drops_specks_of_under_20_pixels():
    fg = np.zeros((30, 30), np.float32)
    fg[2:6, 2:6] = 1  # 16 px: a speck
    fg[10:15, 10:14] = 1  # 20 px: kept
    labels = postprocess.instances(fg)
    assert labels.max() == 1 and labels[3, 3] == 0 and np.sum(labels == 1) == 20


def test_defaults_do_not_shatter_nuclei_on_a_ragged_probability_map():
    """Noisy probabilities (as from a briefly trained network): specks and cut-off rims go."""
    from scipy import ndimage as ndi

    from sciconv import metrics, simulate

    _, truth = simulate.nuclei(2, size=(256, 256), seed=3)
    rng = np.random.default_rng(0)
    probs = []
    for lab in truth:
        noise = ndi.gaussian_filter(rng.normal(0, 0.8, lab.shape), 1.0)
        probs.append(np.clip(ndi.gaussian_filter((lab > 0) * 1.0, 1.0) + noise, 0, 1))
    n_true = sum(int(lab.max()) for lab in truth)

    def score(**kw):
        pred = [postprocess.instances(p.astype(np.float32), **kw) for p in probs]
        ap = metrics.average_precision(list(truth), pred, thresholds=(0.5,))["ap"][0]
        return ap, sum(int(p.max()) for p in pred)

    ap, n = score()
    assert ap >= 0.55 and n <= 1.4 * n_true
    old_ap, old_n = score(min_size=5, smooth=1.0)  # the defaults before: 2-3 times the objects
    assert old_n >= 2 * n_true and old_ap < ap - 0.2


@pytest.mark.parametrize(
    ("prob", "kwargs", "error", "match"),
    [
        (np.zeros((8, 8, 5)), {}, InvalidImageError, r"K = 1.*got shape \(8, 8, 5\)"),
        (np.zeros((8,)), {}, InvalidImageError, "shape"),
        (np.zeros((8, 8)), {"threshold": 1.5}, ConfigError, r"threshold must be in \[0.0, 1.0\]"),
        (np.zeros((8, 8)), {"method": "watershd"}, ConfigError, "did you mean 'watershed'"),
        (np.zeros((8, 8)), {"min_distance": 0}, ConfigError, "min_distance must be >= 1"),
        # fuzzing QA: NaN passed every bound and gave 0 objects
        (np.zeros((8, 8)), {"threshold": np.nan}, ConfigError, "threshold must be a finite"),
        (np.zeros((8, 8)), {"smooth": float("nan")}, ConfigError, "smooth must be a finite"),
        # review: infinite sizes gave a bare OverflowError
        (np.zeros((8, 8)), {"min_size": np.inf}, ConfigError, "min_size must be a finite"),
        (np.zeros((8, 8)), {"bridge": float("inf")}, ConfigError, "bridge must be a finite"),
    ],
)
def test_instances_bad_input(prob, kwargs, error, match):
    with pytest.raises(error, match=match):
        postprocess.instances(prob, **kwargs)


# --------------------------------------------------------------------------------------------------
# measure


def test_measure_known_shapes():
    labels = np.zeros((60, 80), np.int32)
    labels[10:20, 5:35] = 1  # 10 x 30 rectangle
    labels[_disc(labels.shape, 40, 55, 12)] = 2
    intensity = np.full(labels.shape, 2.0)
    intensity[12, 6] = np.nan
    table = postprocess.measure(labels, intensity=intensity)
    assert table["label"].tolist() == [1, 2]
    assert table["area"][0] == 300
    assert (table["x"][0], table["y"][0]) == (19.5, 14.5)  # x = column, y = row
    # the box's max is the last column / row (inclusive, as photutils and SExtractor)
    assert [table[k][0] for k in ("bbox_xmin", "bbox_ymin", "bbox_xmax", "bbox_ymax")] == [
        5,
        10,
        34,
        19,
    ]
    assert table["orientation"][0] == 0.0  # long side along x
    assert table["semi_major"][0] / table["semi_minor"][0] == pytest.approx(3.0, rel=0.02)
    assert table["flux_sum"][0] == pytest.approx(2.0 * 299)  # the NaN pixel is skipped
    assert table["flux_mean"][0] == pytest.approx(2.0)
    assert table["area"][1] == np.sum(_disc(labels.shape, 40, 55, 12))
    assert (table["x"][1], table["y"][1]) == pytest.approx((55.0, 40.0))
    assert table["semi_major"][1] == pytest.approx(12.0, rel=0.03)  # a disc: the radius
    assert table["semi_minor"][1] == pytest.approx(12.0, rel=0.03)


@pytest.mark.parametrize("angle", [30.0, -60.0, 90.0])
def test_measure_ellipse_orientation_and_axes(angle):
    yy, xx = np.mgrid[:101, :101].astype(float)
    t = np.radians(angle)
    u = (xx - 50) * np.cos(t) + (yy - 50) * np.sin(t)
    v = -(xx - 50) * np.sin(t) + (yy - 50) * np.cos(t)
    labels = ((u / 30) ** 2 + (v / 10) ** 2 <= 1).astype(np.int32)
    row = postprocess.measure(labels)[0]
    assert row["orientation"] == pytest.approx(angle, abs=1.0)
    assert row["semi_major"] == pytest.approx(30, rel=0.03)
    assert row["semi_minor"] == pytest.approx(10, rel=0.05)


def test_weighted_centroid_follows_flux():
    labels = np.zeros((20, 20), np.int32)
    labels[5:15, 5:15] = 1
    intensity = np.zeros((20, 20))
    intensity[8, 12] = 10.0
    row = postprocess.measure(labels, intensity=intensity)[0]
    assert (row["x_weighted"], row["y_weighted"]) == (12.0, 8.0)
    assert (row["x"], row["y"]) == (9.5, 9.5)


def _tan_wcs():
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [21.0, 11.0]  # 1-based: 0-based pixel (x=20, y=10)
    wcs.wcs.cdelt = [-0.0002, 0.0002]
    return wcs


def test_measure_radec_from_wcs():
    wcs = _tan_wcs()
    labels = np.zeros((40, 60), np.int32)
    labels[9:12, 19:22] = 1  # centred on x=20, y=10: the reference pixel
    labels[30:35, 40:50] = 2
    table = postprocess.measure(labels, wcs=wcs)
    assert table["ra"][0] == pytest.approx(150.0, abs=1e-9)
    assert table["dec"][0] == pytest.approx(2.0, abs=1e-9)
    sky = wcs.pixel_to_world(table["x"][1], table["y"][1])
    assert (table["ra"][1], table["dec"][1]) == pytest.approx((sky.ra.deg, sky.dec.deg), abs=1e-10)
    assert str(table["ra"].unit) == "deg" and table.meta["RADECSRC"] == "x, y"


def test_measure_flags_objects_at_the_intensity_s_own_bad_pixels():
    """mask="auto": a GridImage's mask, or the NaN of a lazily read image, flag the objects they
    cut (saturated stars lose flux silently otherwise); None asks for no mask columns."""
    from sciconv.io import GridImage

    labels = np.zeros((12, 12), np.int32)
    labels[1:4, 1:4] = 1
    labels[7:10, 7:10] = 2
    data = np.ones((12, 12), np.float32)
    data[8, 8] = np.nan  # inside object 2 (a saturated core, flagged by the DQ)
    by_nan = postprocess.measure(labels, intensity=data)
    assert by_nan["flag_masked"].tolist() == [False, True]
    np.testing.assert_allclose(by_nan["masked_fraction"], [0.0, 1 / 9])
    mask = np.zeros((12, 12, 1), bool)
    mask[0, 0] = True  # touches object 1 only
    own = postprocess.measure(labels, intensity=GridImage(data[..., None], mask=mask))
    assert own["flag_masked"].tolist() == [True, False]
    assert "flag_masked" not in postprocess.measure(labels, intensity=np.ones((12, 12))).colnames
    assert "flag_masked" not in postprocess.measure(labels, intensity=data, mask=None).colnames
    with pytest.raises(ConfigError, match="mask must be one of 'auto'"):
        postprocess.measure(labels, intensity=data, mask="yes")
    # numpy masked arrays: their mask, and none for nomask (a scalar False crashed)
    plain = np.ma.array(np.ones((12, 12)))
    assert "flag_masked" not in postprocess.measure(labels, intensity=plain).colnames
    masked = np.ma.masked_greater(np.where(np.isnan(data), 100.0, data), 5)
    table = postprocess.measure(labels, intensity=masked)
    assert table["flag_masked"].tolist() == [False, True]
    assert table["flux_sum"].tolist() == [9.0, 8.0]  # the masked 100 is not in the flux
    nan_only = postprocess.measure(labels, intensity=np.ma.array(data))  # no mask, a NaN
    assert nan_only["flag_masked"].tolist() == [False, True]


def test_measure_memory_follows_the_objects_not_the_largest_id():
    """Labels from other tools (offset or hashed ids): two objects with ids near 2**31 were
    measured with arrays of 2**31 entries per statistic (16 GiB); now as ids 1 and 2."""
    import tracemalloc

    small = np.zeros((300, 300), np.int64)
    small[10:20, 10:30] = 1
    small[100:150, 200:220] = 2
    image = np.random.default_rng(0).random((300, 300))
    expected = postprocess.measure(small, intensity=image)
    big = np.where(small == 1, 16_777_217, np.where(small == 2, 2**31 - 1, 0))
    tracemalloc.start()
    got = postprocess.measure(big, intensity=image)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6, peak
    assert got["label"].tolist() == [16_777_217, 2**31 - 1]
    for name in ("area", "x", "y", "flux_sum", "semi_major", "bbox_xmin", "bbox_ymax"):
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_measure_empty_and_bad_input():
    empty = postprocess.measure(np.zeros((5, 5), np.int32), intensity=np.ones((5, 5)))
    assert len(empty) == 0 and "flux_sum" in empty.colnames
    with pytest.raises(InvalidImageError, match="integer instance map"):
        postprocess.measure(np.full((5, 5), 0.5, np.float32))  # whole floats are labels
    with pytest.raises(InvalidImageError, match=r"labels' shape \(5, 5\)"):
        postprocess.measure(np.zeros((5, 5), np.int32), intensity=np.ones((4, 5)))
    from astropy.wcs import WCS

    spectral = WCS(naxis=1)
    spectral.wcs.ctype = ["FREQ"]
    with pytest.raises(ConfigError, match="no celestial axes"):
        postprocess.measure(np.ones((5, 5), np.int32), wcs=spectral)


# --------------------------------------------------------------------------------------------------
# writing


@pytest.mark.parametrize("ext", [".ecsv", ".fits", ".csv", ".vot", ".xml"])
def test_catalog_round_trip(tmp_path, ext):
    labels = np.zeros((40, 60), np.int32)
    labels[9:12, 19:22] = 1
    labels[30:35, 40:50] = 2
    table = postprocess.measure(labels, intensity=np.ones((40, 60)), wcs=_tan_wcs())
    path = postprocess.write_catalog(table, tmp_path / f"cat{ext}")
    back = Table.read(path)
    assert back.colnames == table.colnames
    for name in table.colnames:
        np.testing.assert_allclose(np.asarray(back[name]), np.asarray(table[name]), rtol=1e-12)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        postprocess.write_catalog(table, path)
    postprocess.write_catalog(table[:1], path, overwrite=True)
    assert len(Table.read(path)) == 1


def _ucd_table():
    labels = np.zeros((40, 60), np.int32)
    labels[9:12, 19:22] = 1
    labels[30:35, 40:50] = 2
    return postprocess.measure(labels, intensity=np.ones((40, 60)), wcs=_tan_wcs())


def test_measure_columns_carry_ucds_units_and_descriptions():
    from astropy.io.votable.ucd import check_ucd

    table = _ucd_table()
    expected = {
        "label": ("meta.id;meta.main", None),
        "area": ("phys.area;instr.pixel", "pix2"),
        "x": ("pos.cartesian.x;instr.pixel", "pix"),
        "y": ("pos.cartesian.y;instr.pixel", "pix"),
        "ra": ("pos.eq.ra;meta.main", "deg"),
        "dec": ("pos.eq.dec;meta.main", "deg"),
        "flux_sum": ("phot.flux", None),
    }
    for name, (ucd, unit) in expected.items():
        assert table[name].meta["ucd"] == ucd
        assert (None if table[name].unit is None else str(table[name].unit)) == unit
    for name in table.colnames:  # every column is annotated, with controlled-vocabulary words
        assert check_ucd(table[name].meta["ucd"], check_controlled_vocabulary=True), name
        assert table[name].description


def test_votable_catalog_has_ucds_units_and_values(tmp_path):
    from astropy.io.votable import parse

    table = _ucd_table()
    path = postprocess.write_catalog(table, tmp_path / "cat.votable")
    fields = {f.name: f for f in parse(path).get_first_table().fields}
    assert list(fields) == table.colnames
    for name in table.colnames:
        assert fields[name].ucd == table[name].meta["ucd"]
        assert str(fields[name].unit) == str(table[name].unit)
    assert fields["ra"].ucd == "pos.eq.ra;meta.main" and str(fields["area"].unit) == "pix2"
    back = Table.read(path)
    np.testing.assert_array_equal(back["ra"], table["ra"])  # full double precision
    assert back["ra"].meta["ucd"] == "pos.eq.ra;meta.main" and str(back["x"].unit) == "pix"
    # ra/dec name their frame (a COOSYS, as TOPCAT and Aladin expect), and the table's notes
    # (pixel convention, ...) survive as INFO elements; both were dropped
    table.meta["PIXCONV"] = "x = column, y = row, 0-based pixel centres"
    path = postprocess.write_catalog(table, tmp_path / "noted.vot")
    resource = parse(path).resources[0]
    [coosys] = resource.coordinate_systems
    assert coosys.system == "ICRS"
    refs = {f.name: f.ref for f in resource.tables[0].fields}
    assert refs["ra"] == refs["dec"] == coosys.ID and refs["x"] is None
    assert {i.name: i.value for i in resource.infos}["PIXCONV"].startswith("x = column")


def test_fits_catalog_keeps_ucds_for_astropy_and_topcat(tmp_path):
    from astropy.io import fits

    table = _ucd_table()
    path = postprocess.write_catalog(table, tmp_path / "cat.fits")
    back = Table.read(path)
    header = fits.getheader(path, 1)
    for i, name in enumerate(table.colnames, start=1):
        assert back[name].meta["ucd"] == table[name].meta["ucd"]
        assert header[f"TUCD{i}"] == table[name].meta["ucd"]  # the STIL/TOPCAT convention
        assert str(back[name].unit) == str(table[name].unit)
    assert header["TUNIT2"] == "pix2" and "TUCD1" not in table.meta  # the input is not changed


def test_fits_catalog_keeps_a_flux_unit_fits_does_not_define(tmp_path):
    """HST's BUNIT = 'ELECTRONS' makes fluxes 'electron', which astropy will not write as a
    FITS unit (dropped with a warning: the FITS catalog had unitless fluxes)."""
    import warnings

    from astropy import units as u
    from astropy.io import fits

    table = _ucd_table()
    table["flux_sum"] = [1.0] * len(table)
    table["flux_sum"].unit = "electron"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = postprocess.write_catalog(table, tmp_path / "cat.fits")
    i = table.colnames.index("flux_sum") + 1
    # no TUNITn outside the FITS standard: astropy's serialized Quantity, and TCOMMn says it
    assert f"TUNIT{i}" not in fits.getheader(path, 1)
    assert "[electron: astropy's unit name" in fits.getheader(path, 1)[f"TCOMM{i}"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Table.read(path)["flux_sum"].unit == u.electron
    assert fits.getheader(path, 1)["TUNIT2"] == "pix2"  # FITS units as astropy writes them


def _electron_table(unit="electron"):
    """A catalog of an HST-like frame: fluxes, background, mask flags and physical sizes, in the
    unit HST's BUNIT = 'ELECTRONS' reads as (astropy's ``electron``, not a FITS or VO unit)."""
    from astropy.nddata import NDData

    from sciconv.io import PixelScale

    labels = np.zeros((40, 60), np.int32)
    labels[9:12, 19:22] = 1
    labels[30:35, 40:50] = 2
    image = NDData(np.full((40, 60), 3.0), unit=unit)
    bad = np.zeros((40, 60), bool)
    bad[35, 45] = True
    table = postprocess.measure(labels, intensity=image, wcs=_tan_wcs(), background=0.5, mask=bad)
    return postprocess.add_physical_columns(table, PixelScale(0.05, 0.05, "arcsec"))


def test_every_ucd_sciconv_writes_is_a_ucd1p_word():
    """`background` had 'phot.flux.sky;stat.mean': not a UCD1+ word, so astropy's VOTable
    validator (and TOPCAT's) flagged every catalog with a background (W06)."""
    import warnings

    from astropy.io.votable.ucd import check_ucd

    ucds = {name: ucd for name, (ucd, _, _) in postprocess.COLUMN_UCDS.items()}
    ucds |= {name: ucd for name, (_, ucd, _) in postprocess.PHYSICAL_COLUMNS.items()}
    scores = postprocess.object_scores(np.array([[1, 0]]), np.array([[0.9, 0.1]]), np.zeros((1, 2)))
    ucds |= {name: scores[name].meta["ucd"] for name in ("score", "uncertainty")}
    table = _electron_table()
    ucds |= {name: table[name].meta["ucd"] for name in table.colnames}
    # the observation columns of an image whose header names its filter and date
    from astropy.io import fits

    from sciconv.io import GridImage

    header = fits.Header({"FILTER": "r", "MJD-OBS": 60300.1})
    image = GridImage(np.ones((16, 16, 1), np.float32), header=header)
    labels = np.zeros((16, 16), np.int32)
    labels[4:8, 4:8] = 1
    observed = postprocess.add_observation_columns(
        postprocess.measure(labels, intensity=image), image
    )
    ucds |= {name: observed[name].meta["ucd"] for name in ("filter", "mjd_obs")}
    assert {"background", "orientation", "flux", "flag_masked", "area_phys"} <= set(ucds)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, ucd in ucds.items():
            assert check_ucd(ucd, check_controlled_vocabulary=True), (name, ucd)
    assert ucds["background"].split(";")[0] == "instr.skyLevel"
    # a pixel-frame angle: the position-angle word qualified by the pixel frame (as SExtractor's
    # THETA_IMAGE), and a description that says it is not east of north
    assert ucds["orientation"] == "pos.posAng;instr.pixel"
    assert "not east of north" in postprocess.COLUMN_UCDS["orientation"][2]
    for name, (_, _, description) in postprocess.COLUMN_UCDS.items():  # fits a FITS TCOMMn
        assert len(description) <= 60, name


def test_background_carries_the_image_unit():
    table = _electron_table()
    assert table["background"].unit == table["flux"].unit == table["flux_mean"].unit
    assert str(table["background"].unit) == "electron"


def test_votable_catalog_passes_astropy_validation(tmp_path):
    """The HST catalog failed astropy's VOTable validator: W06 (the background UCD) and W50
    (unit 'electron' is no VOUnit); VOUnit's quoted form 'electron' keeps the meaning."""
    import io
    import warnings

    from astropy import units as u
    from astropy.io.votable import parse, validate

    for unit in ("electron", "electron / s", "DN"):
        table = _electron_table(unit)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            path = postprocess.write_catalog(table, tmp_path / f"cat{len(unit)}.vot")
        report = io.StringIO()
        ok = validate(str(path), output=report)
        assert "W06" not in report.getvalue() and "W50" not in report.getvalue(), report.getvalue()
        assert ok, report.getvalue()
        fields = {f.name: f for f in parse(path).get_first_table().fields}
        assert fields["background"].ucd.startswith("instr.skyLevel")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            back = Table.read(path)
        for name in ("flux_sum", "flux_mean", "flux", "background"):
            assert u.Unit(str(back[name].unit)) == u.Unit(unit), name  # the meaning is kept
        assert str(back["area"].unit) == "pix2" and str(back["ra"].unit) == "deg"


def test_votable_catalog_is_valid_against_the_votable_schema(tmp_path):
    """QA: every HISTORY line became an INFO with ID="HISTORY" (astropy copies the name), and
    XML IDs must be unique: the VOTable 1.4 schema refused the catalogs strict VO tools read."""
    from astropy.io import votable

    etree = pytest.importorskip("lxml.etree")
    table = _electron_table("electron")
    table.meta["HISTORY"] = ["sciconv prediction with model m.keras", "  tile = 'auto'"]
    path = postprocess.write_catalog(table, tmp_path / "cat.vot")
    xsd = Path(votable.__file__).parent / "data" / "VOTable.v1.4.xsd"
    schema = etree.XMLSchema(etree.parse(str(xsd)))
    assert schema.validate(etree.parse(str(path))), list(schema.error_log)[:3]
    assert path.read_text().count('name="HISTORY"') == 2


@pytest.mark.parametrize("ext", [".fits", ".ecsv"])
def test_catalogs_in_electrons_keep_the_unit_on_every_flux_column(tmp_path, ext):
    """`background` had no unit in any catalog. ECSV reads 'electron' back exactly; FITS has no
    unit for it: astropy's serialized Quantity keeps it (no TUNITn, a TCOMMn that says the unit),
    read back quietly; astropy then reads the integer columns with a unit as float, which
    read_catalog gives back as integers."""
    import warnings

    from astropy import units as u
    from astropy.io import fits

    table = _electron_table()
    fluxes = ("flux_sum", "flux_mean", "flux", "background")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = postprocess.write_catalog(table, tmp_path / f"cat{ext}")
        back = postprocess.read_catalog(path)
        assert Table.read(path)["flux"].unit == u.electron  # astropy alone, quietly
    for name in fluxes:
        assert u.Unit(str(back[name].unit)) == u.electron, name
        np.testing.assert_allclose(back[name], table[name])
    assert back["area"].unit == u.pix**2 and back["ra"].unit == u.deg
    assert back["area"].dtype.kind == back["bbox_xmin"].dtype.kind == "i"
    assert back["background"].meta["ucd"] == table["background"].meta["ucd"]
    assert all(back[name].unit == u.electron for name in fluxes)
    if ext == ".fits":
        header = fits.getheader(path, 1)
        for name in fluxes:
            assert f"TUNIT{table.colnames.index(name) + 1}" not in header


def test_catalog_csv_splits_vector_columns_and_unknown_extension(tmp_path):
    table = Table({"path": ["a", "b"], "probabilities": np.array([[0.1, 0.9], [0.7, 0.3]])})
    back = Table.read(postprocess.write_catalog(table, tmp_path / "p.csv"))
    assert back.colnames == ["path", "probabilities_0", "probabilities_1"]
    assert back["probabilities_1"].tolist() == [0.9, 0.3]
    with pytest.raises(ConfigError, match=r"catalog extension must be one of '\.ecsv'"):
        postprocess.write_catalog(table, tmp_path / "p.xlsx")
    assert not (tmp_path / "p.xlsx").exists()


def test_write_products_keeps_header_wcs_and_history(tmp_path):
    from astropy.io import fits

    from sciconv import io

    header = _tan_wcs().to_header()
    header["OBJECT"] = "M31 field"
    fits.PrimaryHDU(np.zeros((40, 60), np.float32), header=header).writeto(tmp_path / "in.fits")
    image = io.read(tmp_path / "in.fits")
    labels = np.zeros((40, 60), np.int32)
    labels[5:9, 5:9] = 3
    prob = np.random.default_rng(0).random((40, 60, 2)).astype(np.float32)
    paths = postprocess.write_products(
        tmp_path / "out",
        prob=prob,
        labels=labels,
        like=image,
        model="nuclei.keras",
        params={"tile": 256, "threshold": 0.5},
    )
    with fits.open(paths["labels"]) as hdul:
        hdr, data = hdul[0].header, hdul[0].data
        assert hdr["OBJECT"] == "M31 field" and hdr["CTYPE1"] == "RA---TAN"
        assert hdr["CRVAL1"] == 150.0
        history = " ".join(str(h) for h in hdr["HISTORY"])
        assert "nuclei.keras" in history and "threshold = 0.5" in history
        assert data.dtype.kind == "i" and int(data[6, 6]) == 3
    back = io.read(paths["prob"])
    np.testing.assert_allclose(back.data, prob, rtol=1e-6)
    with pytest.raises(OutputExistsError):
        postprocess.write_products(tmp_path / "out", labels=labels, like=image)
    tif = postprocess.write_products(tmp_path / "t", labels=labels, format="tiff")
    assert tif["labels"].suffix == ".tif"
    np.testing.assert_array_equal(np.squeeze(io.read(tif["labels"]).data), labels)


def test_flatten_table_names_class_columns_by_the_one_rule():
    """One rule: (N, K) columns become name_<class> when the table names K classes, else
    name_<index>; wider columns are indexed in C order; the input table is left alone."""
    from astropy import units as u

    prob = np.array([[0.1, 0.9], [0.7, 0.3]])
    table = Table({"path": ["a", "b"], "probabilities": prob, "flux": np.ones((2, 3)) * u.Jy})
    table["cube"] = np.arange(8).reshape(2, 2, 2)
    table.meta["class_names"] = ["spiral", "elliptical"]
    flat = postprocess.flatten_table(table)
    assert flat.colnames == [
        "path", "probabilities_spiral", "probabilities_elliptical", "flux_0", "flux_1", "flux_2",
        "cube_0", "cube_1", "cube_2", "cube_3",
    ]  # fmt: skip
    assert flat["probabilities_elliptical"].tolist() == [0.9, 0.3]
    assert flat["flux_2"].unit == u.Jy and flat["cube_3"].tolist() == [3, 7]
    assert flat.meta["class_names"] == ["spiral", "elliptical"]
    assert table.colnames == ["path", "probabilities", "flux", "cube"]  # unchanged
    # names= overrides the table's; without any, the index
    assert postprocess.flatten_table(table, names=["s", "e"]).colnames[1:3] == [
        "probabilities_s", "probabilities_e",
    ]  # fmt: skip
    del table.meta["class_names"]
    assert postprocess.flatten_table(table).colnames[1:3] == ["probabilities_0", "probabilities_1"]
    table["probabilities_1"] = [0.0, 0.0]
    with pytest.raises(ConfigError, match=r"cannot split column 'probabilities'.*exists"):
        postprocess.flatten_table(table)
    with pytest.raises(ConfigError, match="table must be an astropy Table; got dict"):
        postprocess.flatten_table({"a": [1]})


def test_catalog_csv_of_a_classification_table_names_classes(tmp_path):
    """What sciconv predict writes for a classifier: predict_files' table, one column per class."""
    table = Table({"path": ["a.fits", "b.fits"], "class": ["spiral", "point"]})
    table["class_index"] = [0, 1]
    table["probabilities"] = np.array([[0.8, 0.2], [0.1, 0.9]], np.float32)
    table.meta["class_names"] = ["spiral", "point"]
    back = Table.read(postprocess.write_catalog(table, tmp_path / "p.csv"), format="ascii.csv")
    assert back.colnames == ["path", "class", "class_index", "probabilities_spiral",
                             "probabilities_point"]  # fmt: skip
    np.testing.assert_allclose(back["probabilities_point"], [0.2, 0.9], rtol=1e-6)
    ecsv = Table.read(postprocess.write_catalog(table, tmp_path / "p.ecsv"))
    assert ecsv["probabilities"].shape == (2, 2)  # ECSV keeps the column whole


def test_product_paths_name_every_product():
    paths = postprocess.product_paths("out", stem="m31.v2")
    assert {k: p.name for k, p in paths.items()} == {
        "prob": "m31.v2_prob.fits", "labels": "m31.v2_labels.fits",
        "catalog": "m31.v2_catalog.ecsv",
    }  # fmt: skip
    assert postprocess.product_paths("out", format="tiff")["prob"].name == "prediction_prob.tif"
    with pytest.raises(ConfigError, match=r"format must be one of 'fits', 'tiff'.*'tif'"):
        postprocess.product_paths("out", format="tif")
    with pytest.raises(ConfigError, match="stem must be a non-empty file name"):
        postprocess.product_paths("out", stem="a/b")


@pytest.mark.parametrize("fmt", ["fits", "tiff"])
@pytest.mark.parametrize(
    ("k", "names", "expected"),
    [
        (1, None, ["foreground"]),
        (2, None, ["background", "foreground"]),
        (3, None, ["background", "interior", "boundary"]),
        (4, None, ["class_0", "class_1", "class_2", "class_3"]),
        (2, ("sky", "source"), ["sky", "source"]),
    ],
)
def test_write_products_writes_the_full_class_cube(tmp_path, fmt, k, names, expected):
    """The one probability convention: every class plane, in output order, named."""
    import tifffile
    from astropy.io import fits

    from sciconv import io

    header = _tan_wcs().to_header()
    header["BUNIT"] = "adu"
    fits.PrimaryHDU(np.zeros((40, 60), np.float32), header=header).writeto(tmp_path / "in.fits")
    image = io.read(tmp_path / "in.fits")
    prob = np.random.default_rng(k).random((40, 60, k)).astype(np.float32)
    paths = postprocess.write_products(
        tmp_path / "out", prob=prob, like=image, format=fmt, class_names=names, model="m.keras"
    )
    assert set(paths) == {"prob"}
    back = io.read(paths["prob"])
    assert back.shape == (40, 60, k)  # io.read gives (H, W, K) back for both formats
    np.testing.assert_allclose(back.data, prob, rtol=1e-6)
    if fmt == "fits":
        with fits.open(paths["prob"]) as hdul:
            hdr = hdul[0].header
            assert hdr["NAXIS"] == (2 if k == 1 else 3) and hdr.get("NAXIS3", 1) == k
            assert [hdr[f"CLASS{i}"] for i in range(k)] == expected
            assert f"CLASS{k}" not in hdr
            assert hdr["CTYPE1"] == "RA---TAN" and hdr["CRVAL1"] == 150.0  # the WCS, carried
        assert back.wcs is not None
        history = " ".join(str(h) for h in back.header["HISTORY"])
    else:
        with tifffile.TiffFile(paths["prob"]) as tif:
            history = " ".join(tif.shaped_metadata[0]["history"])
            assert tif.series[0].axes == ("YX" if k == 1 else "CYX")
    assert "m.keras" in history
    planes = ", ".join(f"{i}={n}" for i, n in enumerate(expected))
    assert f"class probability planes: {planes}" in history


def test_write_products_refuses_to_overwrite_before_writing_anything(tmp_path):
    labels = np.zeros((8, 8), np.int32)
    labels[2:5, 2:5] = 1
    prob = np.stack([labels == 0, labels == 1], axis=-1).astype(np.float32)
    table = postprocess.measure(labels)
    first = postprocess.write_products(tmp_path, labels=labels)
    before = first["labels"].read_bytes()
    with pytest.raises(OutputExistsError, match=r"prediction_labels\.fits: output exists"):
        postprocess.write_products(tmp_path, prob=prob, labels=labels, catalog=table)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prediction_labels.fits"]
    paths = postprocess.write_products(
        tmp_path, prob=prob, labels=labels * 2, catalog=table, overwrite=True
    )
    assert set(paths) == {"prob", "labels", "catalog"}
    assert paths["labels"].read_bytes() != before
    assert paths["catalog"].name == "prediction_catalog.ecsv"
    assert len(Table.read(paths["catalog"])) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ConfigError, "needs prob=, labels=, catalog="),
        ({"prob": np.zeros((4, 4, 2)), "class_names": ["a"]}, ConfigError,
         "class_names has 1 names but prob has 2 class planes"),
        ({"prob": np.zeros((4, 4, 2)), "class_names": "ab"}, ConfigError,
         "class_names must be a list of 2 names"),
        ({"prob": np.zeros((4, 4, 2)), "labels": np.zeros((4, 5), int)}, InvalidImageError,
         "labels are 4 x 5 pixels but prob is 4 x 4"),
        ({"prob": np.zeros((2, 4, 4, 2))}, InvalidImageError, r"prob must have shape \(H, W\)"),
        ({"labels": np.full((4, 4), 0.5)}, InvalidImageError, "integer instance map"),
        ({"catalog": {"a": [1]}}, ConfigError, "table must be an astropy Table"),
        ({"labels": np.zeros((4, 4), int), "format": "png"}, ConfigError,
         "format must be one of 'fits', 'tiff'"),
    ],
)  # fmt: skip
def test_write_products_bad_input(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        postprocess.write_products(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_measure_takes_any_image_the_one_way(tmp_path):
    """intensity= is unwrapped by sciconv.io.as_array: array, GridImage or NDData alike."""
    from astropy.nddata import NDData

    from sciconv import io

    labels = np.zeros((10, 10), int)
    labels[2:4, 1:7] = 1
    pixels = np.full((10, 10, 1), 2.0, np.float32)
    for intensity in (pixels, io.GridImage(pixels), NDData(pixels)):
        assert postprocess.measure(labels, intensity=intensity)["flux_sum"][0] == 24.0


@pytest.mark.parametrize("classes", [2, 3])
def test_instances_recover_simulated_touching_nuclei(classes):
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    from sciconv import metrics, simulate

    _, truth = simulate.nuclei(2, size=(256, 256), seed=3)
    predicted = []
    for lab in truth:
        fg = lab > 0
        if classes == 3:
            rim = find_boundaries(lab, mode="inner") & fg
            prob = np.stack([~fg, fg & ~rim, rim], axis=-1).astype(np.float32)
        else:
            prob = np.stack([~fg, fg], axis=-1).astype(np.float32)
        prob = ndi.gaussian_filter(prob, (1.0, 1.0, 0))  # soft edges, as a network predicts
        predicted.append(postprocess.instances(prob))
    touching = sum(
        np.sum((lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] > 0) & (lab[:, :-1] > 0)) for lab in truth
    )
    assert touching > 20  # pixels where two nuclei meet: the images do hold touching nuclei
    ap = metrics.average_precision(list(truth), predicted, thresholds=(0.5,))["ap"][0]
    assert ap >= 0.9


def test_measure_refuses_a_path_or_text_for_pixels():
    """measure(intensity="x.fits") or background="autoo" ended in numpy's "could not convert
    string to float", naming neither argument."""
    labels = np.zeros((8, 8), np.int32)
    labels[2:5, 2:5] = 1
    with pytest.raises(
        ConfigError, match=r"intensity must be pixels .*'x\.fits'.*sciconv\.io\.read"
    ):
        postprocess.measure(labels, intensity="x.fits")
    with pytest.raises(ConfigError, match=r"background must be pixels .*estimate_background"):
        postprocess.measure(labels, intensity=np.ones((8, 8)), background="autoo")
    with pytest.raises(ConfigError, match="background must hold numbers"):
        postprocess.measure(labels, intensity=np.ones((8, 8)), background=[["a"]])


@pytest.mark.parametrize("suffix", [".ecsv", ".csv"])
def test_large_text_catalogs_are_written_in_slices_with_the_same_bytes(
    tmp_path, monkeypatch, suffix
):
    """A whole-slide catalog (300,000 rows) took 0.8 GB to write as ECSV, astropy's writer
    holding every formatted line; slices of TEXT_CHUNK_ROWS rows write the same bytes."""
    from sciconv.postprocess import _catalog

    n = 50
    rng = np.random.default_rng(0)
    table = Table({"label": np.arange(1, n + 1), "x": rng.normal(size=n)})
    table["flux_sum"] = rng.normal(size=(n, 3))  # a multi-value column
    table["name"] = ['a b,"c' if i % 3 else "x" for i in range(n)]  # quoted in both formats
    table["x"].unit = "pix"
    table.meta["FLUXERR"] = "image uncertainty"
    whole = postprocess.write_catalog(table, tmp_path / f"whole{suffix}")
    monkeypatch.setattr(_catalog, "TEXT_CHUNK_ROWS", 7)
    sliced = postprocess.write_catalog(table, tmp_path / f"sliced{suffix}")
    assert sliced.read_bytes() == whole.read_bytes()
    back = Table.read(sliced)
    assert len(back) == n and back["label"].tolist() == list(range(1, n + 1))


def test_writing_a_large_catalog_holds_one_slice_of_formatted_lines(tmp_path, monkeypatch):
    import tracemalloc

    from sciconv.postprocess import _catalog

    rng = np.random.default_rng(0)
    table = Table({name: rng.normal(size=60_000) for name in "abcdefghij"})
    peaks = {}
    for rows in (10**9, 5_000):  # one write of the whole table, then slices
        monkeypatch.setattr(_catalog, "TEXT_CHUNK_ROWS", rows)
        tracemalloc.start()
        postprocess.write_catalog(table, tmp_path / f"cat{rows}.ecsv")
        peaks[rows] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[5_000] < 0.5 * peaks[10**9], peaks  # measured: 84 MB whole, 12-28 MB in slices
    assert (tmp_path / "cat5000.ecsv").read_bytes() == (tmp_path / f"cat{10**9}.ecsv").read_bytes()


def test_objects_with_saturated_pixels_are_flagged(tmp_path):
    """A FITS SATURATE level flags objects reaching it (their flux is a lower limit), in the
    whole-image and the block-wise catalogs alike; measure's docstring promised it and nothing
    read the card."""
    import keras
    from astropy.io import fits

    from sciconv import io
    from sciconv.inference import predict_instances_blocks

    image = np.zeros((64, 64), np.float32)
    image[10:16, 10:16] = 500.0
    image[40:46, 40:46] = 500.0
    image[42, 42] = 1000.0  # a saturated core
    path = tmp_path / "sat.fits"
    fits.writeto(path, image, fits.Header({"SATURATE": 1000.0}))
    img = io.read(path)
    labels = np.zeros((64, 64), np.int32)
    labels[10:16, 10:16], labels[40:46, 40:46] = 1, 2
    table = postprocess.measure(labels, intensity=img)
    assert table["flag_saturated"].tolist() == [False, True]
    assert table["flag_saturated"].meta["ucd"] == "meta.code" and table.meta["SATURATE"] == 1000
    # with a background the catalog recorded the background under every object pixel as its
    # SATURATE (an array: ECSV blobs, a FITS catalog without the card; QA)
    table = postprocess.measure(labels, intensity=img, background=np.full((64, 64), 7.0))
    assert table.meta["SATURATE"] == 1000.0 and isinstance(table.meta["SATURATE"], float)
    assert table["flag_saturated"].tolist() == [False, True]
    assert postprocess.saturation_level(img) == 1000.0
    assert "flag_saturated" not in postprocess.measure(labels, intensity=image).colnames
    assert postprocess.measure(labels, intensity=image, saturation=600)["flag_saturated"][1]
    assert (
        "flag_saturated" not in postprocess.measure(labels, intensity=img, saturation=None).colnames
    )
    with pytest.raises(ConfigError, match="saturation"):
        postprocess.measure(labels, intensity=img, saturation="yes")
    inputs = keras.Input((None, None, 1))  # a threshold 'model' on the raw pixels
    logits = keras.layers.Conv2D(
        2, 1, kernel_initializer=keras.initializers.Constant([[[[-1.0, 1.0]]]])
    )(inputs)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    _, blocks = predict_instances_blocks(
        model, img, block=32, margin=16, normalize=None, progress=False, min_size=4
    )
    assert blocks["flag_saturated"].tolist() == [False, True]


def test_a_vertical_object_far_from_the_origin_is_at_90_degrees():
    """Moments about the image origin left a rounding residue: a vertical object at x ~ 1000 came
    out at -89.9999999992 degrees (documented range (-90, 90]), the same object at 90 in a
    block-wise catalog measured near its window's origin."""
    for x0, y0 in [(1000, 900), (5, 7), (1393, 1287)]:
        labels = np.zeros((y0 + 12, x0 + 4), np.int32)
        labels[y0 : y0 + 10, x0 : x0 + 3] = 1
        labels[y0 - 1, x0 + 1] = 1  # one pixel on top: the centroid is not a round number
        assert postprocess.measure(labels)["orientation"][0] == 90.0, (x0, y0)


def _star_prob(k: int) -> np.ndarray:
    """A 15-pixel-radius disc of probability 1 (K = 1) or interior 1 (K = 3) in a 64 x 80 map."""
    yy, xx = np.mgrid[:64, :80]
    disc = ((yy - 32) ** 2 + (xx - 30) ** 2) < 15**2
    if k == 1:
        return disc.astype(np.float32)
    return np.stack([~disc, disc, np.zeros_like(disc)], axis=-1).astype(np.float32)


@pytest.mark.parametrize("k", [1, 3])
def test_a_bad_column_or_core_does_not_cut_an_object(k):
    """QA: NaN (masked) pixels counted as background, so a bad column through a star cut it
    in two and a flagged saturated core made a ring the watershed cut into 2-5 objects (23 of
    41 saturated stars of a real HST field); masked_fraction was 0 for every object."""
    prob = _star_prob(k)
    column = prob.copy()
    column[:, 30] = np.nan  # a bad column across the whole image
    core = prob.copy()
    core[27:38, 25:36] = np.nan  # an 11 x 11 flagged core
    for p in (column, core):
        labels = postprocess.instances(p, min_size=3)
        assert labels.max() == 1
        bad = ~np.isfinite(p.reshape(64, 80, -1)).all(axis=-1)
        table = postprocess.measure(labels, mask=bad)
        inside = int((bad & (labels == 1)).sum())
        assert inside > 0
        assert table["masked_fraction"][0] == pytest.approx(inside / table["area"][0])
    # the column is labelled only where it crosses the star, not beyond
    labels = postprocess.instances(column, min_size=3)
    assert labels[:, 30].sum() == 29 and labels[0, 30] == labels[63, 30] == 0
    # bridge=0: NaN is background, as before
    assert postprocess.instances(column, min_size=3, bridge=0).max() == 2


def test_a_large_no_data_area_is_not_claimed_by_its_neighbour():
    """Off a mosaic's edge (NaN beyond column 45): the star beside it keeps its outline, and
    an all-NaN map has no object."""
    prob = _star_prob(1)
    prob[:, 45:] = np.nan
    labels = postprocess.instances(prob, min_size=3)
    assert labels.max() == 1 and not labels[:, 45:].any()
    assert postprocess.instances(np.full((32, 32), np.nan, np.float32)).max() == 0


def test_measure_adds_physical_sizes_when_the_image_knows_its_pixel():
    """QA: measure(labels, intensity=img) of a 0.5 um/pixel image gave pixel sizes only (the
    CLI and block-wise runs added area_phys, ...), and add_physical_columns refused the image."""
    from sciconv.io import GridImage

    labels = np.zeros((12, 12), np.int32)
    labels[2:6, 2:6] = 1
    img = GridImage(np.ones((12, 12, 1), np.float32), meta={"pixel_size": (0.5, 0.5)})
    img.meta["pixel_unit"] = "um"
    table = postprocess.measure(labels, intensity=img)
    assert table["area_phys"][0] == pytest.approx(4.0) and str(table["area_phys"].unit) == "um2"
    plain = postprocess.measure(labels, intensity=np.ones((12, 12)))
    assert "area_phys" not in plain.colnames
    postprocess.add_physical_columns(plain, img)
    assert plain["area_phys"][0] == pytest.approx(4.0)


def test_an_object_of_masked_pixels_only_has_no_flux():
    """QA: an object whose pixels are all masked got flux_sum 0 +- 0 (photutils: NaN)."""
    labels = np.zeros((8, 8), np.int32)
    labels[1:3, 1:3], labels[5:7, 5:7] = 1, 2
    mask = np.zeros((8, 8), bool)
    mask[1:3, 1:3] = True
    table = postprocess.measure(labels, intensity=np.ones((8, 8)), mask=mask,
                                error=np.ones((8, 8)), background=np.zeros((8, 8)))  # fmt: skip
    assert np.isnan(table["flux_sum"][0]) and np.isnan(table["flux_err"][0])
    assert np.isnan(table["flux"][0]) and table["masked_fraction"][0] == 1.0
    assert table["flux_sum"][1] == 4.0 and table["flux_err"][1] == 2.0


def test_masked_strips_between_two_objects_join_neither():
    """Review/QA of the bridge: closing every object at once merged two stars across a 12-pixel
    chip gap and made catalog rows of masked pixels alone (a bad column between two stars)."""
    prob = np.zeros((40, 60), np.float32)
    prob[10:30, 8:20] = prob[10:30, 32:44] = 1.0  # two stars 12 pixels apart
    gap = prob.copy()
    gap[:, 20:32] = np.nan  # a chip gap filling the space between them
    column = prob.copy()
    column[:, 26] = np.nan  # a bad column in the background between them
    for p in (gap, column):
        labels = postprocess.instances(p, min_size=3)
        assert labels.max() == 2 and not labels[:, 20:32].any()
    # an object of a few data pixels does not pass min_size on bridged pixels
    speck = np.zeros((30, 30), np.float32)
    speck[10:13, 10] = speck[10:13, 13] = 1.0
    speck[:, 11:13] = np.nan  # 6 data pixels + 6 bridged
    assert postprocess.instances(speck, min_size=8).max() == 0
    assert postprocess.instances(speck, min_size=5).max() == 1


def test_round_objects_have_one_orientation_wherever_they_sit():
    """Identical 3x3 squares came out at 0 or 90 degrees by position (a -1e-16 residue of
    cxx - cyy; photutils gives 0 for all: QA52 ref #2)."""
    labels = np.zeros((60, 60), np.int32)
    for i, (r, c) in enumerate((r, c) for r in range(1, 60, 6) for c in range(1, 60, 6)):
        labels[r - 1 : r + 2, c - 1 : c + 2] = i + 1
    table = postprocess.measure(labels)
    assert len(table) == 100
    assert set(np.asarray(table["orientation"]).tolist()) == {0.0}
    np.testing.assert_allclose(table["semi_major"], table["semi_minor"])
    # the 2-sigma convention is in the column's description, as the written catalogs carry it
    assert "2 sigma" in table["semi_major"].description
    assert "A_IMAGE" in table["semi_major"].description
