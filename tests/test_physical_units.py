"""One unit for a catalog's physical columns, whatever unit the file declared its pixel size in.

QA (microscopy files as instruments write them): an OME-TIFF or ImageJ file calibrated in nm
gave ``area_phys`` in nm² (25,191,562 for a 25.2 µm² nucleus) and ``PIXSCALE`` in nm, the
same nucleus in a file calibrated in µm 25.2 µm²; a batch over instruments stacked (astropy
``vstack``, pandas) mixed the units under one column name, off by 10^6. Now lengths are in µm
and angles in arcsec (areas in their squares) in every catalog, the GeoJSON for QuPath too; the
image's own pixel scale keeps the file's unit.
"""

from __future__ import annotations

import json
import warnings

import astropy.units as u
import keras
import numpy as np
import pytest
import tifffile
from _helpers import run_cli
from astropy.table import Table, vstack

import sciconv as sc
from sciconv.errors import ConfigError
from sciconv.io import GridImage, PixelScale
from sciconv.postprocess import add_image_columns, add_physical_columns, measure

#: the same 0.325 µm pixel, as files and users spell it
SAME_PIXEL = [
    (0.325, "um"),
    (0.325, "µm"),
    (0.325, "micron"),
    (325.0, "nm"),
    (3.25e-7, "m"),  # Zeiss LSM's VoxelSizeX
    (3.25e-4, "mm"),
    (3250.0, "Angstrom"),
    (0.325 / 25400, "inch"),
]


def _labels() -> np.ndarray:
    labels = np.zeros((40, 40), np.int32)
    labels[4:14, 6:26] = 1  # 10 x 20 px: 200 px
    labels[20:36, 20:30] = 2  # 16 x 10 px: 160 px
    return labels


@pytest.mark.parametrize(("size", "unit"), SAME_PIXEL)
def test_physical_columns_are_in_um_whatever_the_files_length_unit(size, unit):
    table = add_physical_columns(measure(_labels()), PixelScale(size, size, unit))
    np.testing.assert_allclose(table["area_phys"], [200 * 0.325**2, 160 * 0.325**2], rtol=1e-9)
    assert table["area_phys"].unit == u.um**2
    for name in ("equivalent_diameter_phys", "semi_major_phys", "semi_minor_phys"):
        assert table[name].unit == u.um, name
    np.testing.assert_allclose(
        table["equivalent_diameter_phys"], 2 * np.sqrt(table["area_phys"] / np.pi), rtol=1e-12
    )
    assert table["area_phys"].description == "area (pixels x pixel area), in um2"
    assert table["semi_major_phys"].description == "semi-major axis, in um"
    assert table.meta["PIXSCALE"] == "0.325 0.325 um"


@pytest.mark.parametrize(
    ("scale", "arcsec"),
    [
        (PixelScale(0.2, 0.2, "arcsec"), 0.2),
        (PixelScale(0.2 / 3600, 0.2 / 3600, "deg"), 0.2),
        (PixelScale(0.2 / 60, 0.2 / 60, "arcmin"), 0.2),
        (PixelScale(200.0, 200.0, "mas"), 0.2),
        (0.2 / 3600 * u.deg, 0.2),
    ],
)
def test_physical_columns_are_in_arcsec_whatever_the_angle_unit(scale, arcsec):
    table = add_physical_columns(measure(_labels()), scale)
    np.testing.assert_allclose(table["area_phys"], [200 * arcsec**2, 160 * arcsec**2], rtol=1e-9)
    assert table["area_phys"].unit == u.arcsec**2
    assert table["semi_major_phys"].unit == u.arcsec
    assert table.meta["PIXSCALE"] == "0.2 0.2 arcsec"


def test_a_rotated_pixel_in_mas_maps_the_ellipse_as_in_arcsec():
    """The matrix (a celestial WCS's rotation and skew) is converted with the sizes."""
    turn = np.deg2rad(30.0)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    arcsec = PixelScale(0.15, 0.1, "arcsec", matrix=rotation @ np.diag([0.1, 0.15]))
    labels = _labels()
    want = add_physical_columns(measure(labels), arcsec)
    got = add_physical_columns(measure(labels), arcsec.to("mas"))
    for name in ("area_phys", "semi_major_phys", "semi_minor_phys"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, err_msg=name)
        assert got[name].unit == want[name].unit, name
    # object 1 lies along x (20 px): its long axis is x pixels of 0.1" (rotation aside)
    assert got["semi_major_phys"][0] == pytest.approx(want["semi_major"][0] * 0.1, rel=1e-9)


def test_images_in_nm_m_and_um_give_catalogs_that_stack_into_one_unit():
    """measure(intensity=image) and the block-wise path (add_image_columns): the QA batch, one
    nucleus per file, stacked as a user does (astropy vstack and pandas)."""
    labels = _labels()
    tables = []
    for size, unit in ((325.0, "nm"), (3.25e-7, "m"), (0.325, "um")):
        img = GridImage(
            np.ones((40, 40, 1), np.float32), meta={"pixel_size": (size, size), "pixel_unit": unit}
        )
        assert img.pixel_scale.unit == u.Unit(unit).to_string()  # the image keeps the file's
        tables.append(measure(labels, intensity=img))
        tables.append(add_image_columns(measure(labels), img))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stacked = vstack(tables)
    assert not [str(w.message) for w in caught if "area_phys" in str(w.message)]
    assert stacked["area_phys"].unit == u.um**2
    np.testing.assert_allclose(stacked["area_phys"], np.tile([200, 160], 6) * 0.325**2)
    frame = stacked.to_pandas()  # no units there: the numbers alone must agree
    np.testing.assert_allclose(frame["area_phys"].to_numpy(), np.tile([200, 160], 6) * 0.325**2)


def test_catalog_unit_and_in_catalog_unit():
    from sciconv.postprocess import catalog_unit, in_catalog_unit  # the one helper

    names = [catalog_unit(x).to_string() for x in ("nm2", "m", "µm", "Å", "deg", "mas2", "sr")]
    assert names == ["um2", "um", "um", "um", "arcsec", "arcsec2", "arcsec2"]
    assert catalog_unit("pix") == u.pix and catalog_unit("electron / s") == u.electron / u.s
    values, unit = in_catalog_unit([25_191_562.0], "nm2")
    assert unit == u.um**2 and values[0] == pytest.approx(25.191562)
    values, unit = in_catalog_unit(np.array([3.0]), u.deg)
    assert unit == u.arcsec and values[0] == pytest.approx(10800.0)
    assert in_catalog_unit([5], None) == ([5], None)
    with pytest.raises(ConfigError, match="not a unit astropy knows: 'furlongs per cubit'"):
        catalog_unit("furlongs per cubit")


def test_an_inch_pixel_scale_converts():
    """A PixelScale made with astropy's imperial inch could not give its quantity (astropy
    does not read "inch" unless imperial units are enabled)."""
    scale = PixelScale(0.001, 0.001, u.imperial.inch)
    assert scale.unit == "inch" and PixelScale(0.001, 0.001, "inch") == scale
    assert scale.quantity.to_value(u.um).tolist() == pytest.approx([25.4, 25.4])
    assert scale.to("um") == PixelScale(25.4, 25.4, "um")
    table = add_physical_columns(Table({"area": [2]}), scale)
    assert table["area_phys"][0] == pytest.approx(2 * 25.4**2) and table.meta["PIXSCALE"] == (
        "25.4 25.4 um"
    )


def test_geojson_measurements_of_a_catalog_in_nm_are_in_um(tmp_path):
    """A catalog made before (or by hand) with area_phys in nm² and z_phys in nm: QuPath got
    "area_phys nm^2" beside other files' "area_phys µm^2"; now µm (QuPath's own "Area µm^2")."""
    from sciconv.postprocess import labels_to_geojson, write_geojson

    labels = _labels()
    table = measure(labels)
    table["area_phys"] = table["area"] * 325.0**2
    table["area_phys"].unit = "nm2"
    table["z_phys"] = np.full(len(table), 1500.0)
    table["z_phys"].unit = "nm"
    table["ra"] = np.full(len(table), 150.5)  # not a physical size: degrees stay
    table["ra"].unit = "deg"
    collection = labels_to_geojson(labels, measurements=table)
    first = collection["features"][0]["properties"]["measurements"]
    assert first["area_phys µm^2"] == pytest.approx(200 * 0.325**2)
    assert first["z_phys µm"] == pytest.approx(1.5)
    assert first["ra deg"] == 150.5 and first["area px^2"] == 200
    assert not any("nm" in key for key in first)
    path = tmp_path / "cells.geojson"
    write_geojson(labels, path, measurements=table)
    written = json.loads(path.read_text(encoding="utf-8"))["features"][1]["properties"]
    assert written["measurements"]["area_phys µm^2"] == pytest.approx(160 * 0.325**2)


@pytest.fixture(scope="module")
def threshold_model(tmp_path_factory):
    """Foreground probability sigmoid(2 x), saved: labels follow the pixels."""
    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2, 1, kernel_initializer=keras.initializers.Constant([[[[-1.0, 1.0]]]])
    )(inputs)
    path = tmp_path_factory.mktemp("physical_units") / "threshold.keras"
    keras.Model(inputs, keras.layers.Softmax()(logits)).save(path)
    return path


def test_cli_catalogs_of_nm_and_um_files_agree(capsys, tmp_path, threshold_model):
    """``sciconv predict`` on a folder of an OME-TIFF in nm, an ImageJ TIFF in nm and one in
    µm (the QA batch): one area_phys in µm² for the same nuclei, and GeoJSON names alike."""
    image = np.full((64, 64), -1.0, np.float32)
    yy, xx = np.ogrid[:64, :64]
    for cy, cx in ((16, 16), (40, 44)):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 25] = 5.0
    inputs = tmp_path / "in"
    inputs.mkdir()
    nm = {"PhysicalSizeX": 325.0, "PhysicalSizeY": 325.0}
    nm.update(PhysicalSizeXUnit="nm", PhysicalSizeYUnit="nm")
    tifffile.imwrite(inputs / "ome_nm.ome.tif", image, metadata={"axes": "YX", **nm})
    for name, (per_unit, unit) in {"ij_nm": (1 / 325, "nm"), "ij_um": (1 / 0.325, "um")}.items():
        tifffile.imwrite(
            inputs / f"{name}.tif",
            image,
            imagej=True,
            resolution=(per_unit, per_unit),
            metadata={"unit": unit},
        )
    assert sc.io.read(inputs / "ome_nm.ome.tif").pixel_scale.unit == "nm"  # read as declared
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "predict", threshold_model, inputs, "--out", out, "--quiet", "--geojson"
    )
    assert code == 0, err
    tables = []
    for stem in ("ome_nm", "ij_nm", "ij_um"):
        table = sc.postprocess.read_catalog(out / f"{stem}_catalog.ecsv")
        assert table["area_phys"].unit == u.um**2, stem
        np.testing.assert_allclose(table["area_phys"], table["area"] * 0.325**2, err_msg=stem)
        assert table.meta["PIXSCALE"] == "0.325 0.325 um", stem
        tables.append(table)
        features = json.loads((out / f"{stem}_objects.geojson").read_text(encoding="utf-8"))[
            "features"
        ]
        assert "area_phys µm^2" in features[0]["properties"]["measurements"], stem
    stacked = vstack(tables, metadata_conflicts="silent")
    assert len(stacked) == 6 and len(set(np.round(stacked["area_phys"], 9))) == 1


def test_cli_z_stack_in_nm_gives_z_phys_in_um(capsys, tmp_path, threshold_model):
    """An ImageJ Z-stack calibrated in nm (spacing 500 nm): z_phys was in nm beside z."""
    stack = np.full((3, 48, 48), -1.0, np.float32)
    stack[:, 10:20, 10:20] = 5.0
    path = tmp_path / "stack_nm.tif"
    tifffile.imwrite(
        path,
        stack,
        imagej=True,
        resolution=(1 / 325, 1 / 325),
        metadata={"axes": "ZYX", "unit": "nm", "spacing": 500.0},
    )
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", threshold_model, path, "--out", out, "--quiet")
    assert code == 0, err
    table = sc.postprocess.read_catalog(out / "stack_nm_catalog.ecsv")
    assert table["z"].tolist() == [0, 1, 2]
    assert table["z_phys"].unit == u.um and table["z_phys"].tolist() == pytest.approx([0, 0.5, 1])
    assert table["z_phys"].description.endswith(", in um")
    np.testing.assert_allclose(table["area_phys"], 100 * 0.325**2)
    assert table["area_phys"].unit == u.um**2


def test_a_physical_object_size_converts_to_a_scale_in_inches():
    """A hand-made scale in inches (astropy's imperial unit, not in its default namespace):
    object sizes in mm converted through it (``to_value("inch")`` raised)."""
    from sciconv.inference import physical_object_size
    from sciconv.io import PixelScale

    scale = PixelScale(0.001, 0.001, u.imperial.inch)  # 25.4 um pixels
    assert physical_object_size(0.254 * u.mm, scale) == pytest.approx(10.0)
