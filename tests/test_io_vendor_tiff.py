"""TIFF flavours of microscopes and slide scanners: Zeiss LSM channels, the main image of a file
holding several (Leica SCN's macro first), vendors' pixel sizes (Aperio MPP, LSM voxel size, SCN
view size, MetaMorph, FluoView, Philips, NDPI, QPTIFF) and their file name suffixes.

Every file is built here with tifffile, in the layout tifffile's own readers parse
(``TiffFile._series_lsm``, ``_series_scn``, ``_series_svs``, ``read_uic1tag``, ...), around a
crop of the bundled nuclei image or small synthetic pixels.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _helpers import run_cli
from tifffile import TIFF

import sciconv as sc
from sciconv import io
from sciconv.errors import ConfigError, InferenceError, SciconvWarning

NUCLEI = sorted((Path(__file__).resolve().parents[1] / "data/real/nuclei/images").glob("*.tif"))[0]
RNG = np.random.default_rng(0)
SCAN = np.repeat(tifffile.imread(NUCLEI)[:128, :160, None], 3, axis=-1)  # a scan, 0.5 µm
MACRO = np.full((38, 100, 3), 230, np.uint8)  # its overview of the whole glass slide
MACRO[3:35, 30:70] = SCAN[::4, ::4]


# ------------------------------------------------------------------------------ file builders


def _stains(n=3):
    """The nuclei crop as channel 0 (DAPI), noise as the other stains: (n, 64, 80) uint8."""
    dapi = tifffile.imread(NUCLEI)[:64, :80]
    return np.stack([dapi] + [RNG.integers(0, 200, dapi.shape, dtype=np.uint8)] * (n - 1))


def _lsm(path, data, *, photometric="minisblack", names=None, time=False, interval=0.0):
    """A Zeiss LSM: CZ_LSMINFO (voxel sizes in metres) on the first page, each plane's page
    followed by a thumbnail page, as ZEN writes them; ``data`` (Z or T, C, H, W); ``names``
    in a ChannelColors block (appended, its offset patched into CZ_LSMINFO)."""
    n, c, h, w = data.shape
    info = np.zeros(1, np.dtype(TIFF.CZ_LSMINFO))
    fields = dict(
        MagicNumber=67127628, StructureSize=info.itemsize, DimensionX=w, DimensionY=h,
        DimensionZ=1 if time else n, DimensionChannels=c, DimensionTime=n if time else 1,
        DataType=1, ThumbnailX=16, ThumbnailY=16, VoxelSizeX=0.325e-6, VoxelSizeY=0.325e-6,
        VoxelSizeZ=2e-6, ScanType=3 if time else 0, TimeIntervall=interval,
    )  # fmt: skip
    for key, value in fields.items():
        info[key] = value
    raw = info.tobytes()
    with tifffile.TiffWriter(path) as t:
        for k in range(n):
            rgb = photometric == "rgb"
            t.write(
                np.moveaxis(data[k], 0, -1) if rgb else data[k],
                photometric=photometric,
                planarconfig=None if rgb else "separate",
                extratags=[(34412, "B", len(raw), raw, True)] if k == 0 else [],
                metadata=None,
                contiguous=False,
            )
            t.write(np.zeros((16, 16, 3), np.uint8), photometric="rgb", subfiletype=1,
                    metadata=None, contiguous=False)  # fmt: skip
    if names:
        with tifffile.TiffFile(path) as t:
            at = t.pages[0].tags[34412].valueoffset
        text = b"".join(struct.pack("<I", len(s) + 1) + s.encode() + b"\0" for s in names)
        colours = bytes(4 * len(names))
        head = struct.pack("<6I", 24 + len(colours) + len(text), len(names), len(names), 24,
                           24 + len(colours), 0)  # fmt: skip
        with open(path, "r+b") as f:
            block = f.seek(0, 2)
            f.write(head + colours + text)
            f.seek(at + np.dtype(TIFF.CZ_LSMINFO).fields["OffsetChannelColors"][1])
            f.write(struct.pack("<I", block))
    return path


def _scn(path, nm=500):
    """A Leica SCN: the macro first (its <view> the whole slide), then the scan and its
    half-size level; <view> sizes in nm."""
    (h, w), (H, W) = MACRO.shape[:2], SCAN.shape[:2]
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<scn xmlns="http://www.leica-microsystems.com/scn/2010/10/01">
 <collection name="qa" uuid="c1" sizeX="76000000" sizeY="25000000">
  <image name="" uuid="u1">
   <pixels sizeX="{w}" sizeY="{h}"><dimension sizeX="{w}" sizeY="{h}" r="0" ifd="0"/></pixels>
   <view sizeX="76000000" sizeY="25000000" offsetX="0" offsetY="0" spacingZ="0"/>
  </image>
  <image name="" uuid="u2">
   <pixels sizeX="{W}" sizeY="{H}"><dimension sizeX="{W}" sizeY="{H}" r="0" ifd="1"/>
    <dimension sizeX="{W // 2}" sizeY="{H // 2}" r="1" ifd="2"/></pixels>
   <view sizeX="{W * nm}" sizeY="{H * nm}" offsetX="20000000" offsetY="8000000" spacingZ="0"/>
  </image>
 </collection>
</scn>"""
    with tifffile.TiffWriter(path, bigtiff=True) as t:
        o = dict(photometric="rgb", tile=(32, 32), metadata=None)
        t.write(MACRO, description=xml, **o)
        t.write(SCAN, **o)
        t.write(np.ascontiguousarray(SCAN[::2, ::2]), subfiletype=1, **o)
    return path


def _svs(path, mpp=0.499, **resolution):
    """An Aperio SVS: the tiled scan (MPP in its description), thumbnail, label and macro."""
    H, W = SCAN.shape[:2]
    head = "Aperio Image Library v12.0.15 \r\n"
    with tifffile.TiffWriter(path) as t:
        o = dict(photometric="rgb", metadata=None)
        t.write(SCAN, tile=(32, 32), description=f"{head}{W}x{H} [0,0 {W}x{H}] (32x32) RAW"
                f"|AppMag = 20|MPP = {mpp}", **o, **resolution)  # fmt: skip
        thumb = np.ascontiguousarray(SCAN[::4, ::4])
        t.write(thumb, description=f"{head}{W}x{H} -> 40x32 - |AppMag = 20|MPP = {mpp}", **o)
        t.write(np.full((40, 40, 3), 255, np.uint8), subfiletype=1, description=head + "label", **o)
        t.write(MACRO, subfiletype=9, description=head + "macro", **o)
    return path


def _patch_count(path, code, count):
    """Set the count of tag ``code`` of the first IFD (classic TIFF); its value's offset."""
    with tifffile.TiffFile(path) as t:
        tag = t.pages[0].tags[code]
        at, value_at = tag.offset, tag.valueoffset
    with open(path, "r+b") as f:
        f.seek(at + 4)
        f.write(struct.pack("<I", count))
    return value_at


def _stk(path, planes, *, z_step=(3, 2)):
    """A MetaMorph STK: UIC1tag (id, value) pairs of XCalibration, YCalibration (rationals
    0.2) and CalibrationUnits ("um"), and for a stack a UIC2tag of each plane's Z distance, the
    planes contiguous after the first page's (tifffile's read_uic1tag/read_uic2tag)."""
    n = len(planes)
    tags = [(33628, 4, 6, (0,) * 6, True)]  # 8 bytes a pair: written as 6 longs, count 3
    if n > 1:
        tags.append((33629, 5, 3 * n, (0, 1) * (3 * n), True))  # 6 longs a plane: count n
    tifffile.imwrite(path, planes[0], photometric="minisblack", extratags=tags, metadata=None)
    with open(path, "ab") as f:
        for plane in planes[1:]:
            f.write(np.ascontiguousarray(plane).tobytes())
        end = f.tell()
        f.write(struct.pack("<4I", 1, 5, 1, 5) + struct.pack("<I", 3) + b"um\0")
    at = _patch_count(path, 33628, 3)
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(struct.pack("<6I", 4, end, 5, end + 8, 6, end + 16))
    if n > 1:
        at = _patch_count(path, 33629, n)
        with open(path, "r+b") as f:
            f.seek(at)
            for i in range(n):
                f.write(struct.pack("<6I", *z_step, 2459000, i, 2459000, i))
    return path


def _fluoview(path, planes, dims):
    """An Olympus FluoView TIFF: MM_Header dimensions (name, size, resolution, unit) and an
    MM_Stamp on the first page."""
    header = np.zeros(1, np.dtype(TIFF.MM_HEADER))
    for i, (name, size, res, unit) in enumerate(dims + [("", 1, 0.0, "")] * (10 - len(dims))):
        header["Dimensions"][0][i] = (name.encode(), size, 0.0, res, unit.encode())
    raw = header.tobytes()
    tags = [(34361, "B", len(raw), raw, True), (34362, "d", 8, (0.0,) * 8, True)]
    with tifffile.TiffWriter(path) as t:
        for k, plane in enumerate(planes):
            t.write(plane, photometric="minisblack", extratags=tags if k == 0 else [],
                    metadata=None, contiguous=False)  # fmt: skip
    return path


def _philips(path, spacing_mm=0.00025):
    """A Philips TIFF: DICOM_PIXEL_SPACING (mm) of each tiled level in the XML description."""
    reps = "".join(
        '<DataObject ObjectType="PixelDataRepresentation"><Attribute Name="DICOM_PIXEL_SPACING" '
        f'PMSVR="IDoubleArray">"{spacing_mm * 2**k:g}" "{spacing_mm * 2**k:g}"</Attribute>'
        "</DataObject>"
        for k in range(2)
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8" ?><DataObject ObjectType="DPUfsImport">'
        '<Attribute Name="PIM_DP_SCANNED_IMAGES" PMSVR="IDataObjectArray"><Array>'
        '<DataObject ObjectType="DPScannedImage"><Attribute Name="PIM_DP_IMAGE_TYPE" '
        'PMSVR="IString">WSI</Attribute><Attribute Name="PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE" '
        f'PMSVR="IDataObjectArray"><Array>{reps}</Array></Attribute></DataObject></Array>'
        "</Attribute></DataObject>"
    )
    with tifffile.TiffWriter(path) as t:
        o = dict(photometric="rgb", tile=(32, 32), metadata=None)
        t.write(SCAN, description=xml, software="Philips DP v1.0", **o)
        t.write(np.ascontiguousarray(SCAN[::2, ::2]), subfiletype=1, **o)
    return path


def _qptiff(path, names=("DAPI", "CD8", "PanCK")):
    """A PerkinElmer QPTIFF: one page per stain, each named in its XML description; cm tags."""
    with tifffile.TiffWriter(path) as t:
        for plane, name in zip(_stains(len(names)), names):
            xml = (
                "<?xml version='1.0' encoding='utf-8'?><PerkinElmer-QPI-ImageDescription>"
                f"<ImageType>FullResolution</ImageType><Name>{name}</Name>"
                "</PerkinElmer-QPI-ImageDescription>"
            )
            t.write(plane, photometric="minisblack", description=xml, metadata=None,
                    software="PerkinElmer-QPI", resolution=(2e4, 2e4),
                    resolutionunit="CENTIMETER")  # fmt: skip
    return path


def _ndpi(path, um=0.23):
    """A Hamamatsu NDPI: tifffile's classic TIFF with NDPI tags, its IFD copied to the end of
    the file in NDPI's layout (64-bit IFD offsets, the high 32 bits of each tag's value after
    it); pixel size in the resolution tags (cm)."""
    tifffile.imwrite(
        path, SCAN, photometric="rgb", metadata=None, software="NDP.scan",
        extratags=[(65420, "I", 1, 1, True), (271, "s", 0, "Hamamatsu", True)],
        resolution=(1e4 / um, 1e4 / um), resolutionunit="CENTIMETER",
    )  # fmt: skip
    data = bytearray(Path(path).read_bytes())
    first = struct.unpack_from("<I", data, 4)[0]
    n = struct.unpack_from("<H", data, first)[0]
    at = len(data)
    data += data[first : first + 2 + 12 * n] + struct.pack("<Q", 0) + bytes(4 * n)
    struct.pack_into("<Q", data, 4, at)
    Path(path).write_bytes(bytes(data))
    return path


def _quiet_read(path, **kwargs):
    """``io.read`` failing on any SciconvWarning (sciconv's own warnings are errors in tests;
    said here so that a test reads as what it expects)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciconvWarning)
        return io.read(path, **kwargs)


@pytest.fixture(scope="module")
def nuclei_model():
    return sc.models.pretrained("nuclei")


# ------------------------------------------------------------------------------ Zeiss LSM


def test_lsm_channels_are_separate_stains_named_with_their_pixel_size(tmp_path, nuclei_model):
    """QA: a 3-stain LSM was read as an RGB picture and the nuclei model averaged the stains
    (F1 0.00); its voxel size (metres) was dropped."""
    stains = _stains()
    path = _lsm(tmp_path / "confocal.lsm", stains[None], names=["DAPI", "Actin", "RFP"])
    img = _quiet_read(path)
    assert img.shape == (64, 80, 3)
    np.testing.assert_array_equal(img.data, np.moveaxis(stains, 0, -1).astype(np.float32))
    assert io.stored_as_channels(img)
    assert img.meta["channel_names"] == ["DAPI", "Actin", "RFP"]
    assert img.meta["pixel_size"] == (0.325, 0.325) and img.meta["pixel_unit"] == "µm"
    assert "LSM" in img.meta["pixel_size_from"]
    assert (img.pixel_scale.y, img.pixel_scale.unit) == (0.325, "um")
    assert io.read_pixel_scale(path) == img.pixel_scale
    with pytest.raises(InferenceError) as err:
        sc.inference.predict_instances(nuclei_model, img, progress=False)
    text = str(err.value)
    assert "confocal.lsm" in text and "3 separate channels (0 'DAPI', 1 'Actin', 2 'RFP')" in text
    assert "channel 0 ('DAPI') looks like the nuclear stain (--channel 0)" in text
    labels = np.zeros((64, 80), np.int32)
    labels[10:20, 10:20] = 1
    table = sc.postprocess.measure(labels, intensity=img.channel(0))
    assert table["area_phys"][0] == pytest.approx(100 * 0.325**2)


def test_lsm_stacks_give_their_z_step_and_frame_interval(tmp_path):
    stains = _stains()
    z = _lsm(tmp_path / "z.lsm", np.stack([stains, stains[:, ::-1], stains[:, :, ::-1]]))
    assert io.plane_axes(z) == ("Z", (3,))
    img = _quiet_read(z, stack=True)
    assert img.shape == (3, 64, 80, 3) and io.stored_as_channels(img)
    assert img.meta["z_spacing"] == 2.0 and img.meta["pixel_size"] == (0.325, 0.325)
    t = _lsm(tmp_path / "t.lsm", np.stack([stains, stains]), time=True, interval=0.5)
    assert io.plane_axes(t) == ("T", (2,))
    img = _quiet_read(t, stack=True)
    assert img.meta["time_interval"] == 0.5 and "z_spacing" not in img.meta


def test_rgb_lsm_of_a_colour_camera_stays_one_colour_picture(tmp_path):
    colour = _stains()
    img = _quiet_read(_lsm(tmp_path / "camera.lsm", colour[None], photometric="rgb"))
    assert img.shape == (64, 80, 3) and img.meta["photometric"] == "RGB"
    assert not io.stored_as_channels(img)
    assert img.meta["pixel_size"] == (0.325, 0.325)


# ------------------------------------------------------------------------------ which image


def test_scn_reads_the_tissue_scan_not_the_macro(tmp_path):
    """QA: the SCN's macro (first) was read and segmented, warned as 'series 0' of
    'positions/series', with no way to read the scan."""
    path = _scn(tmp_path / "slide.scn")
    with pytest.warns(SciconvWarning) as said:
        img = io.read(path)
    np.testing.assert_array_equal(img.data, SCAN.astype(np.float32))
    text = " ".join(str(w.message) for w in said)
    assert "slide.scn" in text and "series 1 (128 x 160 px, 2 levels), is read" in text
    assert "not series 0 (38 x 100 px, macro: an overview of the whole slide)" in text
    assert "series=i" in text and "--series i" in text
    assert img.meta["series"] == 1 and "SCN" in img.meta["pixel_size_from"]
    assert img.meta["pixel_size"] == (0.5, 0.5)
    assert io.read_pixel_scale(path) == img.pixel_scale
    assert io.plane_axes(path) == ("", ())
    with pytest.warns(SciconvWarning, match="series 1"):
        lazy = io.read(path, lazy=True)
    try:
        np.testing.assert_array_equal(lazy.data[100:128, 96:160], SCAN[100:, 96:].astype("f4"))
    finally:
        lazy.data.close()
    with pytest.warns(SciconvWarning, match="series 1"):
        part = io.read(path, section=(slice(64, 128), slice(0, 40)))
    np.testing.assert_array_equal(part.data, SCAN[64:, :40].astype(np.float32))


def test_series_reads_another_image_of_the_file(tmp_path):
    path = _scn(tmp_path / "slide.scn")
    macro = _quiet_read(path, series=0)  # asked for: nothing to say
    np.testing.assert_array_equal(macro.data, MACRO.astype(np.float32))
    assert macro.meta["pixel_size"] == pytest.approx((25000000 / 38 / 1000, 760.0))  # nm / px
    with pytest.raises(ConfigError) as err:
        io.read(path, series=2)
    assert "slide.scn" in str(err.value) and "series=2, but the file holds 2 images" in str(
        err.value
    )
    assert "series 0 (38 x 100 px, macro" in str(err.value)
    with pytest.raises(ConfigError, match="series must be an int"):
        io.read(path, series="1")
    png = io.write(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ConfigError, match="series= applies to TIFF"):
        io.read(png, series=0)


def test_a_plain_multi_image_tiff_reads_its_first_image_as_other_tools_do(tmp_path):
    """Review: only whole-slide formats pass over a small first image or named side images;
    a plate's positions (a small one first, or one named "A1 label-free") read series 0, as
    tifffile, Fiji and QuPath do, with a warning naming the others."""
    path = tmp_path / "positions.tif"
    with tifffile.TiffWriter(path) as w:
        w.write(np.zeros((8, 20), np.uint8))
        w.write(np.full((64, 80), 7, np.uint8))
    with pytest.warns(SciconvWarning, match=r"only the first, series 0 \(8 x 20 px\), is read"):
        img = io.read(path)
    assert img.shape == (8, 20, 1) and img.data.max() == 0
    named = tmp_path / "named.ome.tif"
    with tifffile.TiffWriter(named, ome=True) as w:
        for k, name in enumerate(("A1 label-free", "A2 label-free", "A3 DAPI")):
            w.write(np.full((16, 16), k, np.uint8), metadata={"Name": name})
    with pytest.warns(SciconvWarning, match="only the first"):
        first = io.read(named)
    assert first.data.max() == 0


def test_svs_reads_its_mpp_before_resolution_tags_and_its_side_images_on_request(tmp_path):
    """QA: Aperio's MPP (in the description) was ignored; resolution tags that disagree (a
    scanner's default) do not win over it."""
    path = _svs(tmp_path / "slide.svs", resolution=(1e4, 1e4), resolutionunit="CENTIMETER")
    img = _quiet_read(path)  # thumbnail, label and macro beside the scan: nothing to say
    np.testing.assert_array_equal(img.data, SCAN.astype(np.float32))
    assert img.meta["pixel_size"] == (0.499, 0.499)
    assert img.meta["pixel_size_from"] == "Aperio SVS MPP"
    assert io.read_pixel_scale(path).x == 0.499
    macro = _quiet_read(path, series=3)
    np.testing.assert_array_equal(macro.data, MACRO.astype(np.float32))
    assert macro.pixel_scale is None  # the baseline's MPP is not the macro's


# ------------------------------------------------------------------------------ pixel sizes


@pytest.mark.parametrize(
    ("build", "size", "source"),
    [
        (lambda p: _stk(p.with_suffix(".stk"), [_stains(1)[0]]), 0.2, "MetaMorph STK"),
        (
            lambda p: _fluoview(p, [_stains(1)[0]], [("X", 80, 0.15, "um"), ("Y", 64, 0.15, "um")]),
            0.15,
            "FluoView",
        ),
        (lambda p: _philips(p), 0.25, "Philips DICOM_PIXEL_SPACING"),
        (lambda p: _ndpi(p.with_suffix(".ndpi")), 0.23, "resolution tags"),
        (lambda p: _qptiff(p.with_suffix(".qptiff")), 0.5, "resolution tags"),
    ],
    ids=["stk", "fluoview", "philips", "ndpi", "qptiff"],
)
def test_vendor_pixel_sizes_are_read_in_micrometres(tmp_path, build, size, source):
    path = build(tmp_path / "image.tif")
    img = _quiet_read(path)
    assert img.meta["pixel_size"] == pytest.approx((size, size))
    assert img.meta["pixel_unit"] == "µm" and source in img.meta["pixel_size_from"]
    assert io.read_pixel_scale(path) == img.pixel_scale


def test_vendor_stacks_give_their_z_step_and_qptiff_its_stains(tmp_path):
    planes = [_stains(1)[0] + k for k in range(3)]
    stk = _stk(tmp_path / "z.stk", planes)
    assert io.plane_axes(stk) == ("Z", (3,))
    img = _quiet_read(stk, stack=True)
    np.testing.assert_array_equal(img.data[..., 0], np.stack(planes).astype(np.float32))
    assert img.meta["z_spacing"] == 1.5 and img.meta["pixel_size"] == (0.2, 0.2)
    dims = [("X", 80, 0.15, "um"), ("Y", 64, 0.15, "um"), ("Z", 3, 0.75, "um")]
    fv = _quiet_read(_fluoview(tmp_path / "fv.tif", planes, dims), stack=True)
    assert fv.shape == (3, 64, 80, 1) and fv.meta["z_spacing"] == 0.75
    stains = _quiet_read(_qptiff(tmp_path / "s.qptiff"))
    assert stains.shape == (64, 80, 3) and io.stored_as_channels(stains)
    assert stains.meta["channel_names"] == ["DAPI", "CD8", "PanCK"]


@pytest.mark.parametrize("dpi", [72, 96, 120, 144, 192])
def test_screen_resolutions_in_inches_are_no_pixel_size(tmp_path, dpi):
    """A screenshot (144 dpi from a Retina display, 120/192 from scaled ones) is not a
    measurement: read as 176 µm pixels before."""
    path = tmp_path / "screenshot.tif"
    tifffile.imwrite(path, SCAN, photometric="rgb", resolution=(dpi, dpi), resolutionunit="INCH")
    assert _quiet_read(path).pixel_scale is None and io.read_pixel_scale(path) is None


# ------------------------------------------------------------------------------ file names


def test_a_folder_of_vendor_files_lists_and_reads_each(tmp_path, capsys):
    """QA: a folder of .svs files was 'a folder that holds no image files'."""
    stains = _stains()
    _svs(tmp_path / "a.svs")
    _ndpi(tmp_path / "b.ndpi")
    _lsm(tmp_path / "c.lsm", stains[None])
    _stk(tmp_path / "d.stk", [stains[0]])
    _qptiff(tmp_path / "e.qptiff")
    tifffile.imwrite(tmp_path / "f.btf", SCAN, bigtiff=True, photometric="rgb")
    tifffile.imwrite(tmp_path / "g.TF8", SCAN, bigtiff=True, photometric="rgb")
    found = io.list_images(tmp_path)
    names = ["a.svs", "b.ndpi", "c.lsm", "d.stk", "e.qptiff", "f.btf", "g.TF8"]
    assert [p.name for p in found] == names
    assert [io.image_stem(p) for p in found] == list("abcdefg")
    shapes = [_quiet_read(p).shape for p in found]
    assert (
        shapes
        == [(128, 160, 3)] * 2 + [(64, 80, 3), (64, 80, 1), (64, 80, 3)] + [(128, 160, 3)] * 2
    )
    _scn(tmp_path / "h.scn")
    assert io.list_images(tmp_path)[-1].name == "h.scn"
    slides = tmp_path / "slides"
    slides.mkdir()
    _svs(slides / "s1.svs")
    _ndpi(slides / "s2.ndpi")
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", slides, "--out", tmp_path / "o", "--quiet"
    )
    assert code == 0, err
    for stem in ("s1", "s2"):
        labels = io.read(tmp_path / "o" / f"{stem}_labels.tif")
        assert labels.shape[:2] == (128, 160) and labels.pixel_scale.x == pytest.approx(
            0.499 if stem == "s1" else 0.23
        )


def test_cli_segments_the_main_image_or_the_series_given(tmp_path, capsys):
    slide = _scn(tmp_path / "slide.scn")
    out = tmp_path / "o"
    with pytest.warns(SciconvWarning, match=r"series 1 \(128 x 160 px, 2 levels\), is read"):
        code, _, err = run_cli(
            capsys, "predict", "pretrained:nuclei", slide, "--out", out, "--quiet"
        )
    assert code == 0, err
    assert io.read(out / "slide_labels.tif").shape[:2] == (128, 160)
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", slide, "--out", tmp_path / "m", "--series", "0",
        "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert io.read(tmp_path / "m" / "slide_labels.tif").shape[:2] == (38, 100)
    png = io.write(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    code, _, err = run_cli(
        capsys, "predict", "pretrained:nuclei", png, "--out", out, "--series", "1"
    )
    assert code != 0 and "--series applies to TIFF files; a.png is not one" in err
