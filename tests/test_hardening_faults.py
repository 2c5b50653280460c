"""Fault cases of issue 15: unreadable inputs, failing writes, malformed run and model files,
damaged or changed downloads, and a quiet command line."""

from __future__ import annotations

import builtins
import errno
import hashlib
import inspect
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import sciconv.fetch as fetch_mod
import sciconv.io as sc_io
from sciconv import postprocess, runs
from sciconv._archive import zip_member_problem
from sciconv.datasets import from_catalog, from_folder
from sciconv.errors import ConfigError, DatasetError, DownloadError, ModelError, WriteError
from sciconv.models import classifier, load
from sciconv.models._validate_meta import POSTPROCESS_SETTINGS

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False

# --------------------------------------------------------------------------- unreadable inputs


def _under(path, folder: Path, *, strict: bool) -> bool:
    try:
        p = Path(os.fsdecode(path)).absolute()
    except TypeError:  # a file descriptor
        return False
    return (p != folder or not strict) and (p == folder or folder in p.parents)


@pytest.fixture
def deny(monkeypatch):
    """Make a folder or file unreadable: chmod where that binds, else (root) the same refusals
    from the operating-system calls Python makes (listing, searching, opening)."""
    restore = []

    def refuse(path):
        raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))

    def deny_path(path: Path) -> None:
        path = path.absolute()
        if not ROOT:
            restore.append((path, path.stat().st_mode))
            path.chmod(0)
            return
        for name in ("scandir", "listdir"):
            real = getattr(os, name)

            def listing(p=".", _real=real):
                if _under(p, path, strict=False):
                    refuse(p)
                return _real(p)

            monkeypatch.setattr(os, name, listing)
        real_stat = os.stat

        def stat(p, *args, **kwargs):
            if _under(p, path, strict=True):  # a folder without search permission
                refuse(p)
            return real_stat(p, *args, **kwargs)

        monkeypatch.setattr(os, "stat", stat)
        real_open = builtins.open

        def opener(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)) and _under(file, path, strict=False):
                refuse(file)
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", opener)
        monkeypatch.setattr(io, "open", opener)

    yield deny_path
    for path, mode in restore:
        path.chmod(mode)


def _class_tree(root: Path) -> Path:
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(2):
            sc_io.write(root / name / f"{i}.tif", np.full((8, 8), i, np.float32))
    return root


def test_unreadable_root_folder_is_a_dataset_error(tmp_path, deny):
    root = _class_tree(tmp_path / "data")
    deny(root)
    with pytest.raises(DatasetError, match=r"data: cannot read .*Permission denied"):
        from_folder(root, image_size=8)


def test_unreadable_class_folder_is_named(tmp_path, deny):
    root = _class_tree(tmp_path / "data")
    deny(root / "b")
    with pytest.raises(DatasetError, match=r"data[/\\]b: cannot read .*Permission denied"):
        from_folder(root, image_size=8)


def _catalog(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "imgs").mkdir()
    rows = ["path,label"]
    for i in range(3):
        sc_io.write(root / "imgs" / f"{i}.tif", np.full((8, 8), i, np.float32))
        rows.append(f"imgs/{i}.tif,{i % 2}")
    csv_path = root / "cat.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    return csv_path


def test_unreadable_catalog_is_a_dataset_error(tmp_path, deny):
    csv_path = _catalog(tmp_path / "c")
    deny(csv_path)
    with pytest.raises(DatasetError, match=r"cat\.csv: cannot read the catalog .*Permission"):
        from_catalog(csv_path, label_column="label")


def test_catalog_rows_in_an_unsearchable_folder_are_named(tmp_path, deny):
    csv_path = _catalog(tmp_path / "c")
    deny(csv_path.parent / "imgs")
    with pytest.raises(DatasetError, match=r"cat\.csv: 3 file\(s\) .* cannot be reached .*line 2"):
        from_catalog(csv_path, label_column="label")


# --------------------------------------------------------------------------- failing writers


def _no_partials(folder: Path) -> None:
    assert [p.name for p in folder.iterdir() if ".part" in p.name] == []


def _full_disk(monkeypatch, owner, name):
    """Make ``owner.name`` write a little of its file, then fail as a full disk does."""

    def fail(*args, **kwargs):
        target = next(a for a in args if isinstance(a, (str, os.PathLike, io.IOBase)))
        if isinstance(target, io.IOBase):  # an open file (the catalog's UTF-8 text file)
            target.write("partial")
        else:
            with open(target, "wb") as fh:  # a partial file, as a write cut short leaves
                fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(owner, name, fail)


def test_fits_writer_on_a_full_disk(tmp_path, monkeypatch):
    from astropy.io import fits

    _full_disk(monkeypatch, fits.HDUList, "writeto")
    target = tmp_path / "out.fits"
    with pytest.raises(WriteError, match=r"out\.fits: cannot write FITS \(No space left") as info:
        sc_io.write(target, np.zeros((4, 4), np.float32))
    assert ".part" not in str(info.value)
    assert not target.exists()
    _no_partials(tmp_path)


def test_tiff_writer_on_a_full_disk(tmp_path, monkeypatch):
    import tifffile

    _full_disk(monkeypatch, tifffile, "imwrite")
    target = tmp_path / "out.tif"
    with pytest.raises(WriteError, match=r"out\.tif: .*No space left") as info:
        sc_io.write(target, np.zeros((4, 4), np.uint16))
    assert ".part" not in str(info.value)
    assert not target.exists()
    _no_partials(tmp_path)


def test_png_writer_on_a_full_disk(tmp_path, monkeypatch):
    _full_disk(monkeypatch, Path, "write_bytes")
    target = tmp_path / "out.png"
    with pytest.raises(WriteError, match=r"out\.png: .*No space left"):
        sc_io.write(target, np.zeros((4, 4), np.uint8))
    assert not target.exists()


def test_ecsv_writer_on_a_full_disk(tmp_path, monkeypatch):
    from astropy.table import Table

    _full_disk(monkeypatch, Table, "write")
    target = tmp_path / "cat.ecsv"
    with pytest.raises(WriteError, match=r"cat\.ecsv: .*No space left"):
        postprocess.write_catalog(Table({"a": [1, 2]}), target)
    assert not target.exists()
    _no_partials(tmp_path)


@pytest.mark.parametrize("suffix", [".tif", ".png", ".fits"])
def test_writers_in_a_read_only_folder(tmp_path, monkeypatch, suffix):
    folder = tmp_path / "ro"
    folder.mkdir()
    if ROOT:  # root writes anyway: refuse the temporary file as a read-only folder does
        import tempfile

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(folder / ".x.part"))

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    else:
        folder.chmod(0o555)
    try:
        with pytest.raises(WriteError, match=rf"out{re.escape(suffix)}: .*Permission denied"):
            sc_io.write(folder / f"out{suffix}", np.zeros((4, 4), np.uint8))
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


# --------------------------------------------------------------------------- run folders


@pytest.mark.parametrize(
    "text, match",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),
        ('{"a": ' * 5000 + "1" + "}" * 5000, "nested too deep|unreadable"),
        ('{"epochs_done": ' + "9" * 5000 + "}", "unreadable run configuration"),
        ('{"status": 3}', "key 'status' must be a string; got int"),
        ('{"status": "paused"}', "'status' must be 'running' or 'finished'"),
        ('{"model": [1, 2]}', "key 'model' must be a JSON object; got list"),
        ('{"epochs_done": "7"}', "key 'epochs_done' must be an integer; got str"),
        ('{"epochs_done": true}', "key 'epochs_done' must be an integer; got bool"),
        ("[1, 2]", "must be a JSON object; got list"),
        (b"\xff\xfe{}", "unreadable run configuration"),
    ],
)
def test_malformed_run_config_is_a_config_error(tmp_path, text, match):
    path = tmp_path / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=rf"config\.json: .*({match})"):
        runs.read_config(tmp_path)


def test_oversized_run_config_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "MAX_CONFIG_BYTES", 10)
    (tmp_path / "config.json").write_text('{"status": "finished", "epochs_done": 3}')
    with pytest.raises(ConfigError, match=r"config\.json: .*over the 10-byte limit"):
        runs.read_config(tmp_path)


# --------------------------------------------------------------------------- model files


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.keras"
    classifier((16, 16, 1), 2, filters=(4,), dense=()).save(path)
    return path


def _with_postprocess(src: Path, dst: Path, settings) -> Path:
    """Copy a .keras file, recording ``settings`` as its metadata's post-processing."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "config.json":
                config = json.loads(data)
                for layer in config["config"]["layers"]:
                    if layer["class_name"].endswith("SciconvMetadata"):
                        layer["config"]["metadata"]["postprocess"] = settings
                data = json.dumps(config).encode()
            zout.writestr(name, data)
    return dst


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"min_size": "abc"}, r"'min_size' must be an integer; got str 'abc'"),
        (["min_size", 3], r"settings must be a JSON object .*got list"),
        ("watershed", r"settings must be a JSON object .*got str"),
        ({"min_size": True}, r"'min_size' must be an integer; got bool"),
        ({"min_size": 2.5}, r"'min_size' must be a whole number"),
        ({"threshold": 7}, r"'threshold' must be between 0.0 and 1.0; got int 7"),
        ({"threshold": [0.5]}, r"'threshold' must be a number; got list"),
        ({"smooth": {"sigma": 1}}, r"'smooth' must be a number; got dict"),
        ({"method": 3}, r"'method' must be one of \['watershed', 'connected'\]"),
        ({"seed_threshold": "0.4"}, r"'seed_threshold' must be a number; got str"),
        ({"no_such_key": 1}, r"'no_such_key' is not a keyword of sciconv.postprocess.instances"),
    ],
)
def test_wrong_recorded_postprocess_is_refused_on_load(tmp_path, saved_model, settings, match):
    path = _with_postprocess(saved_model, tmp_path / "pp.keras", settings)
    with pytest.raises(ModelError, match=r"pp\.keras: recorded post-processing " + ".*" + match):
        load(path)


def test_valid_recorded_postprocess_loads(tmp_path, saved_model):
    from sciconv.models import get_metadata

    settings = {"threshold": 0.4, "min_size": 3, "seed_threshold": None, "method": "connected"}
    path = _with_postprocess(saved_model, tmp_path / "ok.keras", settings)
    assert get_metadata(load(path))["postprocess"] == settings


def test_postprocess_check_at_use_leaves_unknown_names_to_the_caller():
    from sciconv.models import check_postprocess

    assert check_postprocess({"minsize": 3}, check_names=False) == {"minsize": 3}
    with pytest.raises(ModelError, match=r"model 'm': recorded .*'min_size' must be an integer"):
        check_postprocess({"minsize": 3, "min_size": "x"}, path="model 'm'", check_names=False)


def test_postprocess_settings_match_the_function():
    params = inspect.signature(postprocess.instances).parameters.values()
    keywords = {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(POSTPROCESS_SETTINGS) == keywords


def _damage(src: Path, dst: Path, member: str, offset: int = 200) -> Path:
    raw = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = z.getinfo(member)
    raw[info.header_offset + 30 + len(info.filename) + len(info.extra) + offset] ^= 0xFF
    dst.write_bytes(bytes(raw))
    return dst


def test_crc_bad_model_member_is_named(tmp_path, saved_model):
    path = _damage(saved_model, tmp_path / "bad.keras", "model.weights.h5", 2000)
    with pytest.raises(
        ModelError, match=r"bad\.keras: damaged model file: member 'model\.weights\.h5' is corrupt"
    ):
        load(path)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_member_problem_names_the_member(compression):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        z.writestr("ok.txt", b"fine")
        z.writestr("w.bin", np.arange(4000, dtype=np.int32).tobytes())
    raw = bytearray(buf.getvalue())
    info = zipfile.ZipFile(buf).getinfo("w.bin")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + 10 : start + 30] = bytes(20)  # the directory is intact, the data is not
    problem = zip_member_problem(zipfile.ZipFile(io.BytesIO(bytes(raw))))
    assert problem is not None and problem.startswith("member 'w.bin' is corrupt"), problem


# --------------------------------------------------------------------------- downloads


def _register(monkeypatch, name, fname, data: bytes | None):
    known = None if data is None else "sha256:" + hashlib.sha256(data).hexdigest()
    entry = {"url": "http://127.0.0.1:9/" + fname, "fname": fname, "known_hash": known}
    monkeypatch.setitem(fetch_mod.REGISTRY, name, entry)


def test_cached_file_changed_after_download_is_detected(tmp_path, monkeypatch):
    payload = b"galaxies" * 100
    _register(monkeypatch, "galaxy10", "g.h5", payload)
    (tmp_path / "g.h5").write_bytes(payload)
    assert fetch_mod.fetch("galaxy10", cache=tmp_path) == tmp_path / "g.h5"
    (tmp_path / "g.h5").write_bytes(payload[:-1] + b"!")
    with pytest.raises(
        DownloadError, match=r"g\.h5: the cached file no longer matches its checksum .*Delete it"
    ) as info:
        fetch_mod.fetch("galaxy10", cache=tmp_path)
    assert "fetch('galaxy10')" in str(info.value)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _dsb_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


IMG = np.zeros((16, 20), np.uint8)
MASK = np.zeros((16, 20), np.uint8)
MASK[2:6, 2:6] = 255


def test_unpinned_download_is_recorded_and_rechecked(tmp_path, monkeypatch):
    _register(monkeypatch, "dsb2018", "stage1_train.zip", None)
    archive = tmp_path / "stage1_train.zip"
    archive.write_bytes(_dsb_zip({"a/images/a.png": _png(IMG), "a/masks/1.png": _png(MASK)}))
    assert fetch_mod.fetch("dsb2018", cache=tmp_path) == archive  # placed by hand: checked
    assert (tmp_path / ".stage1_train.zip.sha256").is_file()
    archive.write_bytes(_dsb_zip({"a/images/a.png": _png(IMG + 1), "a/masks/1.png": b"x"}))
    with pytest.raises(DownloadError, match=r"stage1_train\.zip: .*no longer matches the SHA-256"):
        fetch_mod.fetch("dsb2018", cache=tmp_path)


def test_html_page_served_for_an_unpinned_download_is_not_kept(tmp_path, monkeypatch):
    import pooch

    def serve_html(self, url, output_file, pooch_obj, check_only=False):
        Path(output_file).write_bytes(b"<!DOCTYPE html><html>Sign in, token=s3cr3t</html>")

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", serve_html)
    _register(monkeypatch, "dsb2018", "stage1_train.zip", None)
    with pytest.raises(DownloadError, match=r"stage1_train\.zip: cannot unpack .*not a zip") as e:
        fetch_mod.fetch("dsb2018", cache=tmp_path, progress=False, retries=0)
    assert "s3cr3t" not in str(e.value)
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == []


@pytest.mark.parametrize(
    "members, match",
    [
        (
            {"a/images/a.png": _png(IMG), "a/masks/1.png": b"password=hunter2\n"},
            r"member 'a/masks/1\.png' is not a readable image",
        ),
        (
            {"a/images/a.png": _png(IMG), "a/masks/1.png": _png(MASK[:8, :8])},
            r"member 'a/masks/1\.png' is a 8 x 8 mask for a 16 x 20 image",
        ),
    ],
)
def test_corrupt_archive_members_are_named(tmp_path, monkeypatch, members, match):
    _register(monkeypatch, "dsb2018", "stage1_train.zip", None)
    (tmp_path / "stage1_train.zip").write_bytes(_dsb_zip(members))
    with pytest.raises(DownloadError, match=r"stage1_train\.zip: archive " + match) as info:
        fetch_mod.load("dsb2018", cache=tmp_path, progress=False)
    assert "hunter2" not in str(info.value)


def _galaxy10(path: Path, build) -> bytes:
    import h5py

    with h5py.File(path, "w") as h5:
        build(h5)
    return path.read_bytes()


GALAXY10_CASES = {
    "wrong keys": (
        lambda h5: h5.create_dataset("pictures", data=np.zeros((2, 4, 4, 3), np.uint8)),
        r"'images' is missing \(the file holds \['pictures'\]\)",
    ),
    "group": (
        lambda h5: (h5.create_group("images"), h5.create_dataset("ans", data=[0])),
        r"'images' is a Group, not a dataset",
    ),
    "shape": (
        lambda h5: (
            h5.create_dataset("images", data=np.zeros((2, 4, 4), np.uint8)),
            h5.create_dataset("ans", data=[0, 1]),
        ),
        r"'images' has shape \(2, 4, 4\); expected \(N, H, W, 3\)",
    ),
    "dtype": (
        lambda h5: (
            h5.create_dataset("images", data=np.zeros((2, 4, 4, 3), np.float64)),
            h5.create_dataset("ans", data=[0, 1]),
        ),
        r"'images' has dtype float64; expected uint8",
    ),
    "labels": (
        lambda h5: (
            h5.create_dataset("images", data=np.zeros((2, 4, 4, 3), np.uint8)),
            h5.create_dataset("ans", data=[0, 1, 2]),
        ),
        r"'ans' has shape \(3,\); expected \(2,\)",
    ),
    "string labels": (
        lambda h5: (
            h5.create_dataset("images", data=np.zeros((2, 4, 4, 3), np.uint8)),
            h5.create_dataset("ans", data=np.array([b"a", b"b"])),
        ),
        r"'ans' has dtype \|S1; expected integers",
    ),
    "bomb": (
        lambda h5: (
            h5.create_dataset("images", shape=(10**6, 256, 256, 3), dtype=np.uint8, chunks=True),
            h5.create_dataset("ans", shape=(10**6,), dtype=np.uint8),
        ),
        r"'images' declares [\d,]+ bytes, over the [\d,]+-byte limit",
    ),
}


@pytest.mark.parametrize("case", list(GALAXY10_CASES))
def test_crafted_galaxy10_file_is_named(tmp_path, monkeypatch, case):
    pytest.importorskip("h5py")
    build, match = GALAXY10_CASES[case]
    data = _galaxy10(tmp_path / "Galaxy10_DECals.h5", build)
    _register(monkeypatch, "galaxy10", "Galaxy10_DECals.h5", data)
    with pytest.raises(DownloadError, match=r"Galaxy10_DECals\.h5: not a Galaxy10 HDF5 .*" + match):
        fetch_mod.load("galaxy10", cache=tmp_path, progress=False)


# --------------------------------------------------------------------------- the command line

_CHATTER = re.compile(
    r"^[IWEF]\d{4} |absl::InitializeLog|cudart_stub|cuda_platform|cuInit|oneDNN|"
    r"cpu_feature_guard|TensorFlow binary is optimized",
    re.MULTILINE,
)


def test_info_prints_no_tensorflow_chatter():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    code = "import sys; from sciconv.cli import main; sys.exit(main(['info']))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "tensorflow" in done.stdout
    noise = _CHATTER.findall(done.stdout + done.stderr)
    assert noise == [], done.stdout + done.stderr
