"""Multi-channel fluorescence TIFFs (an OME-TIFF or ImageJ composite of DAPI, phalloidin,
mCherry) are separate stains, not the R, G, B of one picture: a model that takes colour (the
pretrained nuclei model) averaged them to grey, merging the nuclei with the other stains (QA:
AP@0.5 0.000 on a real image, products written, exit code 0). Now refused, naming the channels
and the nuclear one, while RGB TIFFs, PNGs and plain arrays are segmented as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from _helpers import assert_one_line_error, run_cli

import sciconv as sc
from sciconv.errors import InferenceError

NUCLEI = sorted((Path(__file__).resolve().parents[1] / "data/real/nuclei/images").glob("*.tif"))[0]


def _stains(path, names=("Phalloidin", "DAPI", "mCherry"), *, imagej=False):
    """The real nuclei image as channel 1 of a 16-bit stack, ring-like 'other stains' beside."""
    dapi = tifffile.imread(NUCLEI).astype(np.uint16) * 40
    rng = np.random.default_rng(0)
    other = rng.integers(200, 3000, dapi.shape, dtype=np.uint16)
    stack = np.stack([other, dapi, other[::-1]] + [other.T] * (len(names) - 3))
    if imagej:
        tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "CYX"})
    else:
        meta = {"axes": "CYX", "Channel": {"Name": list(names)}}
        tifffile.imwrite(path, stack, ome=True, metadata=meta)
    return path


@pytest.fixture(scope="module")
def model():
    return sc.models.pretrained("nuclei")


def test_separate_stain_channels_are_refused_naming_the_nuclear_one(tmp_path, model):
    img = sc.io.read(_stains(tmp_path / "three.ome.tif"))
    assert sc.io.stored_as_channels(img)
    for call in (sc.inference.predict_instances, sc.inference.predict_tiled):
        with pytest.raises(InferenceError) as err:
            call(model, img, progress=False)
        text = str(err.value)
        assert "three.ome.tif" in text and "3 separate channels" in text
        assert "0 'Phalloidin', 1 'DAPI', 2 'mCherry'" in text
        assert "channel 1 ('DAPI') looks like the nuclear stain (--channel 1)" in text
    four = sc.io.read(_stains(tmp_path / "four.ome.tif", ("DAPI", "Phalloidin", "mCherry", "Cy5")))
    with pytest.raises(InferenceError, match=r"4 separate channels .*channel 0 \('DAPI'\)"):
        sc.inference.predict_instances(model, four, progress=False)
    ij = sc.io.read(_stains(tmp_path / "composite.tif", imagej=True))  # no names: numbers
    with pytest.raises(InferenceError, match=r"3 separate channels \(0, 1, 2\)"):
        sc.inference.predict_instances(model, ij, progress=False)
    # the nuclear channel alone is segmented as the grey original is
    one = sc.inference.predict_instances(model, img.channel(1), progress=False)
    grey = sc.inference.predict_instances(model, sc.io.read(NUCLEI), progress=False)
    assert one.max() > 10
    assert sc.metrics.matching(grey, one, thresh=0.5)["f1"] > 0.95


def test_colour_pictures_and_arrays_are_segmented_as_before(tmp_path, model):
    """An RGB TIFF (photometric RGB) and a plain (H, W, 3) array stay colour images."""
    grey = tifffile.imread(NUCLEI)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    img = sc.io.read(tmp_path / "rgb.tif")
    assert not sc.io.stored_as_channels(img) and not sc.io.stored_as_channels(rgb)
    from_file = sc.inference.predict_instances(model, img, progress=False)
    np.testing.assert_array_equal(
        from_file, sc.inference.predict_instances(model, rgb, progress=False)
    )
    assert from_file.max() > 10


def test_cli_refuses_stains_and_segments_the_channel_given(capsys, tmp_path):
    path = _stains(tmp_path / "three.ome.tif")
    before = path.read_bytes()
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", path, "--out", tmp_path / "o", "--quiet"
    )
    assert code == 1
    assert_one_line_error(err, "three.ome.tif", "3 separate channels", "(--channel 1)")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", path, "--out", tmp_path / "o", "--channel", "1",
        "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert tifffile.imread(tmp_path / "o" / "three_labels.ome.tif").max() > 10
    assert path.read_bytes() == before


def test_napari_opens_stains_as_channel_layers(tmp_path):
    pytest.importorskip("napari")
    from sciconv.napari import read_layers

    [(data, kwargs, kind)] = read_layers(_stains(tmp_path / "three.ome.tif"))
    assert kind == "image" and "rgb" not in kwargs and kwargs["channel_axis"] == 0
    assert kwargs["name"] == ["Phalloidin", "DAPI", "mCherry"] and data.shape[0] == 3


def test_a_channel_count_the_model_refuses_names_the_file(tmp_path, model):
    """A 2-channel plain-TIFF array (H, W, 2), nothing saying stains: the input transform's
    channel error did not name the file it came from."""
    two = np.zeros((32, 32, 2), np.float32)
    tifffile.imwrite(tmp_path / "two.tif", two, photometric="minisblack", planarconfig="contig")
    img = sc.io.read(tmp_path / "two.tif")
    with pytest.raises(sc.errors.SciconvError, match=r"two\.tif: .*channels"):
        sc.inference.predict_instances(model, img, progress=False)
    img.meta.pop("photometric")  # not a separate-stain file: the transform's own error
    with pytest.raises(sc.errors.InvalidImageError, match=r"two\.tif: image must have"):
        sc.inference.predict_instances(model, img, progress=False)


def test_a_grey_image_for_an_rgb_trained_model_gets_a_fix_that_works():
    """A segmenter trained on DSB2018 PNGs (R = G = B) refused grey TIFFs of the same images
    with a hint to use --channel K, which cannot make 3 channels of 1 (QA)."""
    model = sc.models.segmenter((None, None, 3), depth=1, filters=2)
    grey = tifffile.imread(NUCLEI).astype(np.float32)
    with pytest.raises(InferenceError, match=r"expects 3; repeat a grey image to R, G, B"):
        sc.inference.predict_tiled(model, grey, progress=False)
    rgb = np.repeat(grey[..., None], 3, axis=-1)  # the fix it names works
    assert sc.inference.predict_tiled(model, rgb, progress=False).shape[:2] == grey.shape


def test_colour_images_sciconv_wrote_are_not_taken_for_stains(tmp_path, model):
    """sciconv's writer stores float RGB and RGBA as grey planes without names: the first
    version of the refusal turned away sc.io.write(path, sc.io.read("he.png")) (review)."""
    folder = Path(__file__).resolve().parents[1] / "data/real/nuclei_brightfield/images"
    he = sc.io.read(sorted(folder.glob("*.tif"))[0])  # float32 RGB as read
    path = sc.io.write(tmp_path / "he.tif", he.data)
    again = sc.io.read(path)
    assert again.meta["photometric"] == "MINISBLACK" and not sc.io.stored_as_channels(again)
    np.testing.assert_array_equal(
        sc.inference.predict_instances(model, again, progress=False),
        sc.inference.predict_instances(model, he, progress=False),
    )
