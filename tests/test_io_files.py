"""sciconv.io._files: image_stem and pair_by_stem (list_images is tested in test_io.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sciconv import io
from sciconv.errors import ConfigError, DatasetError, SciconvWarning


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("a.fits.gz", "a"),
        ("a.fits.fz", "a"),
        ("a.fz", "a"),
        ("b.TIF", "b"),
        ("c.FITS", "c"),
        ("cell_7.tiff", "cell_7"),
        ("x.y.png", "x.y"),
        ("dir/sub/f.jpeg", "f"),
        ("notes.txt", "notes"),  # no image extension: Path.stem
        ("e.tar.gz", "e.tar"),
        (".fits", ".fits"),  # only an extension: Path.stem
    ],
)
def test_image_stem(name, stem):
    assert io.image_stem(name) == stem


def _touch(folder, *names, dtype=np.float32):
    folder.mkdir(exist_ok=True)
    for name in names:
        io.write(folder / name, np.zeros((4, 4), dtype=dtype))
    return folder


@pytest.fixture
def pairs_dir(tmp_path):
    images = _touch(tmp_path / "images", "b.fits", "a.fits.gz", "c.tif")
    masks = _touch(tmp_path / "masks", "a.tif", "c.tif", "b.png", dtype=np.uint8)
    return images, masks


def test_pairs_by_stem_sorted_whatever_the_extensions(pairs_dir):
    images, masks = pairs_dir
    pairs = io.pair_by_stem(images, masks)
    assert [(p.name, m.name) for p, m in pairs] == [
        ("a.fits.gz", "a.tif"),
        ("b.fits", "b.png"),
        ("c.tif", "c.tif"),
    ]
    assert all(p.parent == images and m.parent == masks for p, m in pairs)
    # lists in any order, and single files, give the same pairs
    shuffled = io.pair_by_stem(sorted(images.iterdir())[::-1], list(masks.iterdir()))
    assert shuffled == pairs
    assert io.pair_by_stem(images / "b.fits", masks / "b.png") == [pairs[1]]


def test_image_without_mask_names_it_and_the_folder(pairs_dir):
    images, masks = pairs_dir
    (masks / "b.png").unlink()
    with pytest.raises(
        DatasetError, match=r"image .*b\.fits has no mask: expected a file with"
    ) as e:
        io.pair_by_stem(images, masks)
    assert str(e.value).endswith(f"stem 'b' in {masks}")


def test_mask_without_image_names_it_and_the_folder(pairs_dir):
    images, masks = pairs_dir
    _touch(masks, "extra.tif")
    with pytest.raises(DatasetError, match=r"mask .*extra\.tif has no image") as e:
        io.pair_by_stem(images, masks)
    assert str(e.value).endswith(f"expected a file with stem 'extra' in {images}")


def test_several_unmatched_are_counted_and_listed(pairs_dir):
    images, masks = pairs_dir
    _touch(images, "d.fits", "e.fits", "f.fits")
    with pytest.raises(
        DatasetError,
        match=r"image .*d\.fits has no mask: .* \(and 2 more image\(s\) without a mask: "
        r"e\.fits, f\.fits\)$",
    ):
        io.pair_by_stem(images, masks)


def test_partner_folder_of_a_list_is_named(pairs_dir):
    images, masks = pairs_dir
    with pytest.raises(DatasetError, match=rf"stem 'c' in {masks}$"):
        io.pair_by_stem(list(images.iterdir()), [masks / "a.tif", masks / "b.png"])
    other = _touch(masks.parent / "other", "c.tif")
    with pytest.raises(DatasetError, match=r"stem 'a' in the 2 masks given$"):
        io.pair_by_stem(list(images.iterdir()), [masks / "b.png", other / "c.tif"])


@pytest.mark.parametrize("side", ["images", "masks"])
def test_duplicate_stems_name_both_files(pairs_dir, side):
    images, masks = pairs_dir
    folder = images if side == "images" else masks
    _touch(folder, "a.fits")
    first, second = sorted(p for p in folder.iterdir() if io.image_stem(p) == "a")
    with pytest.raises(DatasetError) as e:
        io.pair_by_stem(images, masks, unmatched="skip")  # ambiguity is never skipped
    assert str(e.value) == (
        f"{side}: two files share the stem 'a' ({first} and {second}); pairs are matched by "
        "stem, so each stem must be unique"
    )


def test_unmatched_skip_and_warn(pairs_dir):
    images, masks = pairs_dir
    (masks / "b.png").unlink()
    _touch(masks, "z.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pairs = io.pair_by_stem(images, masks, unmatched="skip")
    assert [(p.name, m.name) for p, m in pairs] == [("a.fits.gz", "a.tif"), ("c.tif", "c.tif")]
    with pytest.warns(
        SciconvWarning, match=r"left out of the pairs: image .*b\.fits has no mask.*"
    ):
        assert io.pair_by_stem(images, masks, unmatched="warn") == pairs
    with pytest.warns(SciconvWarning, match=r"; mask .*z\.tif has no image"):
        io.pair_by_stem(images, masks, unmatched="warn")


@pytest.mark.parametrize(
    ("images", "masks", "error", "match"),
    [
        ("missing", "masks", DatasetError, r"missing: images: no such file or folder"),
        ("images", "empty", DatasetError, r"empty: masks folder holds no image files"),
        ("images", [], DatasetError, r"^masks is an empty list$"),
        ([], "masks", DatasetError, r"^images is an empty list$"),
        ("images", ["gone.tif"], DatasetError, r"masks: 1 file\(s\) not found: \['.*gone\.tif'\]"),
        (5, "masks", ConfigError, r"images must be a folder or a list of file paths; got 5"),
    ],
)
def test_bad_inputs(pairs_dir, images, masks, error, match):
    root = pairs_dir[0].parent
    (root / "empty").mkdir()

    def resolve(value):
        if isinstance(value, str):
            return root / value
        if isinstance(value, list):
            return [root / v for v in value]
        return value

    with pytest.raises(error, match=match):
        io.pair_by_stem(resolve(images), resolve(masks))


def test_unknown_unmatched_option_suggests_the_nearest(pairs_dir):
    with pytest.raises(ConfigError, match=r"unmatched must be one of .*got 'warns'.*'warn'"):
        io.pair_by_stem(*pairs_dir, unmatched="warns")


def test_mask_suffix_pairs_masks_beside_their_images(tmp_path):
    # QA "bring your own labels": Cellpose saves a.tif beside a_masks.tif in one folder; the
    # folder given twice paired each file with itself (then "swapped?")
    for stem in ("a", "b"):
        io.write(tmp_path / f"{stem}.tif", np.zeros((4, 4), np.float32))
        io.write(tmp_path / f"{stem}_masks.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(DatasetError, match=r"same 4 files.*mask_suffix='_masks'"):
        io.pair_by_stem(tmp_path, tmp_path)
    pairs = io.pair_by_stem(tmp_path, tmp_path, mask_suffix="_masks")
    assert [(p.name, m.name) for p, m in pairs] == [
        ("a.tif", "a_masks.tif"),
        ("b.tif", "b_masks.tif"),
    ]
    with pytest.raises(DatasetError, match="no mask file's stem ends with mask_suffix='_label'"):
        io.pair_by_stem(tmp_path, tmp_path, mask_suffix="_label")


def test_masks_with_a_suffix_in_their_own_folder_name_the_fix(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    for stem in ("a", "b"):
        io.write(tmp_path / "img" / f"{stem}.tif", np.zeros((4, 4), np.float32))
        io.write(tmp_path / "lab" / f"{stem}_label.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(
        DatasetError, match=r"named like 'a_label' for 'a': pass mask_suffix='_label'"
    ):
        io.pair_by_stem(tmp_path / "img", tmp_path / "lab")
    pairs = io.pair_by_stem(tmp_path / "img", tmp_path / "lab", mask_suffix="_label")
    assert [m.name for _, m in pairs] == ["a_label.tif", "b_label.tif"]


def test_a_folder_of_sub_folders_names_the_recursive_listing(tmp_path):
    (tmp_path / "img" / "plate0").mkdir(parents=True)
    (tmp_path / "lab").mkdir()
    io.write(tmp_path / "img" / "plate0" / "a.tif", np.zeros((4, 4), np.float32))
    io.write(tmp_path / "lab" / "a.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(DatasetError, match=r"no image files \(1 in its sub-folders: .*recursive"):
        io.pair_by_stem(tmp_path / "img", tmp_path / "lab")
    nested = io.list_images(tmp_path / "img", recursive=True)
    assert len(io.pair_by_stem(nested, tmp_path / "lab")) == 1
