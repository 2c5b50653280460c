"""sciconv.fetch, offline: a local HTTP server on 127.0.0.1 stands in for Zenodo and the Broad."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

import sciconv.fetch as fetch_mod
from sciconv.errors import ConfigError, DatasetError, DownloadError
from sciconv.fetch import available, cache_dir, fetch, load

PAYLOAD = bytes(range(256)) * 64  # 16 kB fixture "data set"


def _register(monkeypatch, name, url, data, *, fname="fixture.bin", algo="sha256", wrong=False):
    digest = hashlib.new(algo, data).hexdigest()
    if wrong:
        digest = digest[::-1]
    entry = {"url": url, "fname": fname, "known_hash": f"{algo}:{digest}", "description": "fixture"}
    monkeypatch.setitem(fetch_mod.REGISTRY, name, entry)
    return entry


def _cache_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_correct_hash_downloads_and_second_call_uses_cache(server, monkeypatch, tmp_path):
    base, files, counts = server
    files["/data/fixture.bin"] = PAYLOAD
    _register(monkeypatch, "galaxy10", f"{base}/data/fixture.bin", PAYLOAD, algo="md5")
    path = fetch("galaxy10", cache=tmp_path, progress=True, retries=0)
    assert path == tmp_path / "fixture.bin"
    assert path.read_bytes() == PAYLOAD
    assert _cache_files(tmp_path) == ["fixture.bin"]
    assert fetch("galaxy10", cache=tmp_path, progress=False, retries=0) == path
    assert counts["/data/fixture.bin"] == 1  # cached: no second request


def test_wrong_hash_raises_and_leaves_nothing(server, monkeypatch, tmp_path):
    base, files, counts = server
    files["/data/fixture.bin"] = PAYLOAD
    _register(monkeypatch, "galaxy10", f"{base}/data/fixture.bin", PAYLOAD, wrong=True)
    with pytest.raises(DownloadError, match=r"fixture\.bin.*checksum") as info:
        fetch("galaxy10", cache=tmp_path, progress=False, retries=0)
    assert f"{base}/data/fixture.bin" in str(info.value)
    assert _cache_files(tmp_path) == []
    assert counts["/data/fixture.bin"] == 1


def test_retries_repeat_the_download(server, monkeypatch, tmp_path):
    base, files, counts = server
    files["/data/fixture.bin"] = PAYLOAD
    _register(monkeypatch, "galaxy10", f"{base}/data/fixture.bin", PAYLOAD, wrong=True)
    with pytest.raises(DownloadError, match="checksum"):
        fetch("galaxy10", cache=tmp_path, progress=False, retries=1)
    assert counts["/data/fixture.bin"] == 2
    assert _cache_files(tmp_path) == []


def test_truncated_download_raises_and_leaves_no_partial_file(server, monkeypatch, tmp_path):
    base, files, counts = server
    files["/fixture.bin"] = PAYLOAD
    # no hash at all (as for DSB2018): only the transfer itself can reveal the truncation
    monkeypatch.setitem(
        fetch_mod.REGISTRY,
        "dsb2018",
        {"url": f"{base}/truncated/fixture.bin", "fname": "fixture.bin", "known_hash": None},
    )
    with pytest.raises(DownloadError, match=r"could not download .*/truncated/fixture\.bin"):
        fetch("dsb2018", cache=tmp_path, progress=False, retries=0)
    assert counts["/truncated/fixture.bin"] == 1
    assert _cache_files(tmp_path) == []


def test_server_gone_raises_download_error(server, monkeypatch, tmp_path):
    base, files, _ = server
    files["/fixture.bin"] = PAYLOAD
    _register(monkeypatch, "galaxy10", f"{base}/fixture.bin", PAYLOAD)
    # a port that was just free: nothing listens there
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setitem(
        fetch_mod.REGISTRY["galaxy10"], "url", f"http://127.0.0.1:{dead}/fixture.bin"
    )
    with pytest.raises(DownloadError, match=rf"127\.0\.0\.1:{dead}/fixture\.bin.*ConnectionError"):
        fetch("galaxy10", cache=tmp_path, progress=False, retries=0)
    assert _cache_files(tmp_path) == []


def test_404_is_a_download_error(server, monkeypatch, tmp_path):
    base, _, _ = server
    _register(monkeypatch, "galaxy10", f"{base}/missing.bin", PAYLOAD)
    with pytest.raises(DownloadError, match="404"):
        fetch("galaxy10", cache=tmp_path, progress=False, retries=0)
    assert _cache_files(tmp_path) == []


def test_failed_download_removes_the_cache_folders_it_created(server, monkeypatch, tmp_path):
    base, _, _ = server
    _register(monkeypatch, "galaxy10", f"{base}/missing.bin", PAYLOAD)
    with pytest.raises(DownloadError, match="404"):
        fetch("galaxy10", cache=tmp_path / "new" / "cache", progress=False, retries=0)
    assert list(tmp_path.iterdir()) == []  # neither 'new' nor 'new/cache' is left behind
    (tmp_path / "kept").mkdir()
    with pytest.raises(DownloadError, match="404"):
        fetch("galaxy10", cache=tmp_path / "kept", progress=False, retries=0)
    assert (tmp_path / "kept").is_dir()  # a folder that existed before stays


def test_unknown_name_and_bad_retries():
    with pytest.raises(ConfigError, match=r"name must be one of .*galaxy10"):
        fetch("galaxy11")
    with pytest.raises(ConfigError, match="retries"):
        fetch("galaxy10", retries=-1)
    assert set(available()) == {"galaxy10", "dsb2018", "dsb2018_local"}
    assert fetch_mod.REGISTRY["galaxy10"]["known_hash"] == "md5:c6b7b4db82b3a5d63d6a7e3e5249b51c"


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("SCICONV_DATA_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("SCICONV_DATA_DIR")
    assert "sciconv" in str(cache_dir())


# ------------------------------------------------------------------------------- load forms
def _galaxy10_h5() -> tuple[bytes, np.ndarray, np.ndarray]:
    import h5py

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    labels = np.array([0, 3, 3, 9, 1, 0], dtype=np.uint8)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        h5["images"] = images
        h5["ans"] = labels
    return buf.getvalue(), images, labels


def test_load_galaxy10_arrays_and_folders(server, monkeypatch, tmp_path):
    base, files, counts = server
    data, images, labels = _galaxy10_h5()
    files["/Galaxy10_DECals.h5"] = data
    _register(
        monkeypatch,
        "galaxy10",
        f"{base}/Galaxy10_DECals.h5",
        data,
        fname="Galaxy10_DECals.h5",
        algo="md5",
    )
    got_images, got_labels, names = load("galaxy10", cache=tmp_path / "c", progress=False)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_labels.dtype == np.int64
    assert names[0] == "disturbed" and names[9] == "edge_on_with_bulge" and len(names) == 10

    root = load("galaxy10", out=tmp_path / "png", cache=tmp_path / "c", progress=False)
    folders = sorted(p.name for p in root.iterdir())
    assert folders == [
        "00_disturbed",
        "01_merging",
        "03_in_between_round_smooth",
        "09_edge_on_with_bulge",
    ]
    from PIL import Image

    back = np.asarray(Image.open(root / "03_in_between_round_smooth" / "galaxy10_00002.png"))
    np.testing.assert_array_equal(back, images[2])

    from astropy.io import fits

    root = load(
        "galaxy10", out=tmp_path / "fits", format="fits", cache=tmp_path / "c", progress=False
    )
    fits_file = root / "09_edge_on_with_bulge" / "galaxy10_00003.fits"
    cube = fits.getdata(fits_file)
    assert cube.dtype == np.uint8 and cube.shape == (3, *images.shape[1:3])  # bands as planes
    np.testing.assert_array_equal(np.moveaxis(cube, 0, -1), images[3])
    from sciconv.io import read

    np.testing.assert_array_equal(read(fits_file).data, images[3])  # (H, W, 3) back
    assert counts["/Galaxy10_DECals.h5"] == 1  # downloaded once for three loads


def test_load_galaxy10_unreadable_file(server, monkeypatch, tmp_path):
    base, files, _ = server
    files["/Galaxy10_DECals.h5"] = PAYLOAD  # not HDF5
    _register(
        monkeypatch, "galaxy10", f"{base}/Galaxy10_DECals.h5", PAYLOAD, fname="Galaxy10_DECals.h5"
    )
    with pytest.raises(DownloadError, match=r"Galaxy10_DECals\.h5: cannot read Galaxy10 HDF5"):
        load("galaxy10", cache=tmp_path, progress=False)


def _png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_load_dsb2018_zip_to_pairs(server, monkeypatch, tmp_path):
    base, files, _ = server
    grey = np.zeros((16, 20), np.uint8)
    grey[2:6, 2:6] = 200
    grey[8:12, 10:16] = 180
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    colour = np.dstack([np.full((16, 20), 230, np.uint8), grey, grey // 2])
    m1 = np.zeros((16, 20), np.uint8)
    m1[2:6, 2:6] = 255
    m2 = np.zeros((16, 20), np.uint8)
    m2[8:12, 10:16] = 255
    m2[5, 5] = 255  # overlaps m1: the first mask wins
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("aaaa/images/aaaa.png", _png_bytes(rgba))
        zf.writestr("aaaa/masks/m1.png", _png_bytes(m1))
        zf.writestr("aaaa/masks/m2.png", _png_bytes(m2))
        zf.writestr("bbbb/images/bbbb.png", _png_bytes(colour))
        zf.writestr("bbbb/masks/m1.png", _png_bytes(m1))
    files["/stage1_train.zip"] = buf.getvalue()
    monkeypatch.setitem(
        fetch_mod.REGISTRY,
        "dsb2018",
        {"url": f"{base}/stage1_train.zip", "fname": "stage1_train.zip", "known_hash": None},
    )
    images, labels, ids = load("dsb2018", cache=tmp_path / "c", progress=False)
    assert ids == ["aaaa", "bbbb"]
    assert images[0].shape == (16, 20) and images[1].shape == (16, 20, 3)
    assert labels[0][5, 5] == 1 and labels[0][9, 11] == 2 and labels[0].max() == 2

    images_dir, masks_dir = load(
        "dsb2018",
        out=tmp_path / "pairs",
        modality="fluo",
        format="tif",
        cache=tmp_path / "c",
        progress=False,
    )
    import tifffile

    assert sorted(p.name for p in images_dir.iterdir()) == ["aaaa.tif"]
    np.testing.assert_array_equal(tifffile.imread(images_dir / "aaaa.tif"), grey)
    mask = tifffile.imread(masks_dir / "aaaa.tif")
    assert mask.dtype == np.uint16
    np.testing.assert_array_equal(mask, labels[0])


def test_load_dsb2018_bad_zip(server, monkeypatch, tmp_path):
    base, files, _ = server
    files["/stage1_train.zip"] = PAYLOAD
    monkeypatch.setitem(
        fetch_mod.REGISTRY,
        "dsb2018",
        {"url": f"{base}/stage1_train.zip", "fname": "stage1_train.zip", "known_hash": None},
    )
    with pytest.raises(DownloadError, match=r"stage1_train\.zip: cannot unpack"):
        load("dsb2018", cache=tmp_path, progress=False)


def test_load_dsb2018_local(tmp_path):
    import tifffile
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    img = np.zeros((8, 8), np.uint8)
    img[2:4, 2:4] = 90
    lab = (img > 0).astype(np.uint16)
    Image.fromarray(np.dstack([img, img, img, np.full_like(img, 255)])).save(
        tmp_path / "images/x1.png"
    )
    tifffile.imwrite(tmp_path / "labels/x1.tif", lab)
    Image.fromarray(255 - img).save(tmp_path / "images/x2.png")
    tifffile.imwrite(tmp_path / "labels/x2.tif", lab)
    (tmp_path / "index.csv").write_text("id,modality\nx1,fluo\nx2,gray_bright\n")
    images, labels, ids = load("dsb2018_local", path=tmp_path, modality="fluo")
    assert ids == ["x1"]
    np.testing.assert_array_equal(images[0], img)
    np.testing.assert_array_equal(labels[0], lab)
    with pytest.raises(DatasetError, match=r"no image matches modality='color'"):
        load("dsb2018_local", path=tmp_path, modality="color")
    with pytest.raises(ConfigError, match="needs path="):
        load("dsb2018_local")
    with pytest.raises(ConfigError, match="modality must be one of"):
        load("dsb2018_local", path=tmp_path, modality="fluorescence")
    (tmp_path / "labels/x2.tif").unlink()
    with pytest.raises(DatasetError, match=r"x2\.png has no mask: .*stem 'x2' in .*labels"):
        load("dsb2018_local", path=tmp_path)


@pytest.mark.parametrize("limit", ["ratio", "total"])
def test_load_dsb2018_refuses_a_decompression_bomb_before_unpacking(
    server, monkeypatch, tmp_path, limit
):
    base, files, _ = server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("aaaa/images/aaaa.png", bytes(3 * 2**20))  # 3 MiB of zeros: ~1000:1
    files["/stage1_train.zip"] = buf.getvalue()
    monkeypatch.setitem(
        fetch_mod.REGISTRY,
        "dsb2018",
        {"url": f"{base}/stage1_train.zip", "fname": "stage1_train.zip", "known_hash": None},
    )
    if limit == "total":
        monkeypatch.setattr(fetch_mod, "MAX_EXTRACT_RATIO", 10**6)
        monkeypatch.setattr(fetch_mod, "MAX_EXTRACT_BYTES", 2**20)
        match = r"stage1_train\.zip: refusing to unpack .* [\d,]+ bytes in all, over"
    else:
        match = r"stage1_train\.zip: refusing to unpack .* expands [\d,]+-fold"
    with pytest.raises(DownloadError, match=match):
        load("dsb2018", cache=tmp_path, progress=False)
    assert not (tmp_path / "stage1_train").exists()
    assert not (tmp_path / "stage1_train.part").exists()


def test_load_dsb2018_local_takes_the_competition_layout(tmp_path):
    # QA "bring your own labels": the Kaggle download (one binary PNG per nucleus) was refused
    from PIL import Image

    img = np.zeros((12, 16), np.uint8)
    img[1:4, 1:4] = img[6:10, 8:13] = 200
    for image_id in ("aa", "bb"):
        (tmp_path / "stage1_train" / image_id / "images").mkdir(parents=True)
        (tmp_path / "stage1_train" / image_id / "masks").mkdir()
        Image.fromarray(img).save(
            tmp_path / "stage1_train" / image_id / "images" / f"{image_id}.png"
        )
        for k, (ys, xs) in enumerate(((slice(1, 4), slice(1, 4)), (slice(6, 10), slice(8, 13)))):
            m = np.zeros_like(img)
            m[ys, xs] = 255
            Image.fromarray(m).save(tmp_path / "stage1_train" / image_id / "masks" / f"m{k}.png")
    images, labels, ids = load("dsb2018_local", path=tmp_path)
    assert ids == ["aa", "bb"]
    np.testing.assert_array_equal(images[0], img)
    assert labels[0][2, 2] == 1 and labels[0][7, 9] == 2 and labels[0].max() == 2
    _, masks_dir = load("dsb2018_local", path=tmp_path, out=tmp_path / "pairs")
    assert sorted(p.name for p in masks_dir.iterdir()) == ["aa.tif", "bb.tif"]
    (tmp_path / "stage1_train" / "bb" / "masks" / "m1.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"m1\.png: is not a readable image"):
        load("dsb2018_local", path=tmp_path)
    with pytest.raises(DatasetError, match="competition's stage1_train"):
        load("dsb2018_local", path=tmp_path / "pairs" / "images")
