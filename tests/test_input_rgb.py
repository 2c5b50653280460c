"""RGB input models: what inference feeds a model equals what the nuclei training fed it, and the
block-wise path transforms every window as the whole-image path transforms the image."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tifffile
from PIL import Image

from sciconv.inference import predict_instances, predict_instances_blocks, predict_tiled
from sciconv.models import attach_metadata, get_metadata, set_metadata

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import nuclei_data  # noqa: E402

RGB = nuclei_data.INPUTS["rgb"]
GRAY = nuclei_data.INPUTS["gray"]


def _he_image(seed=0, shape=(72, 88)):
    """An H&E-like uint8 RGB image: pink background, purple nuclei, a little noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((*shape, 3), np.float32)
    img[:] = (228.0, 196.0, 218.0)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for k, (cy, cx) in enumerate(
        zip(rng.integers(6, shape[0] - 6, 14), rng.integers(6, shape[1] - 6, 14))
    ):
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.integers(9, 26)
        img[disc] = (96.0, 64.0, 150.0)
        labels[disc & (labels == 0)] = k + 1
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), labels


def _identity_model(channels):
    """Outputs its (normalized) input: what the model sees, pixel for pixel."""
    inputs = keras.Input((None, None, channels))
    model = keras.Model(inputs, keras.layers.Conv2D(channels, 1, use_bias=False)(inputs))
    model.layers[1].set_weights([np.eye(channels, dtype=np.float32)[None, None]])
    return attach_metadata(model)


@pytest.mark.parametrize("name", ["rgb", "gray"])
def test_inference_feeds_the_model_what_the_training_fed_it(name):
    transform = nuclei_data.INPUTS[name]
    spec = nuclei_data.normalization_for(transform)
    channels = nuclei_data.channels_of(transform)
    model = _identity_model(channels)
    set_metadata(model, normalization=spec, input_transform=transform)
    png, _ = _he_image()
    rgba = np.concatenate([png, np.full((*png.shape[:2], 1), 255, np.uint8)], axis=-1)
    trained = nuclei_data.normalize(nuclei_data.transform_image(rgba, transform), spec)
    seen = predict_tiled(model, rgba, progress=False, blend="none")
    assert seen.shape == (*png.shape[:2], channels)
    np.testing.assert_allclose(seen, trained.reshape(seen.shape), atol=1e-6)
    if name == "rgb":
        # one normalization over the three channels: the flipped pink background keeps its hue
        # (G > B > R after the flip), which per-channel limits would map to about 0 each
        assert spec == {**nuclei_data.NORMALIZATION, "per_channel": False}
        bg = seen[png[..., 1] > 180].mean(axis=0)
        assert bg[1] > bg[2] + 0.05 > bg[0] + 0.1
        nucleus = seen[png[..., 1] < 100].mean(axis=0)
        assert nucleus[1] > nucleus[0] > nucleus[2]


def _rgb_model():
    """A 3-channel 'nuclei model': foreground where the flipped R and G minus B are large
    (purple nuclei on pink, bright grey), a little context through a 3x3 kernel."""
    inputs = keras.Input((None, None, 3))
    w = np.zeros((3, 3, 3, 2), np.float32)
    w[1, 1, :, 1] = (2.0, 6.0, -6.0)
    w[..., 1] += 0.05
    logits = keras.layers.Conv2D(2, 3, padding="same", kernel_initializer="zeros")(inputs)
    model = keras.Model(inputs, keras.layers.Softmax()(logits), name="rgb_nuclei")
    model.layers[1].set_weights([w, np.array([0.0, -1.5], np.float32)])
    model = attach_metadata(model)
    set_metadata(
        model,
        normalization=nuclei_data.RGB_NORMALIZATION,
        input_transform=RGB,
        postprocess={"method": "connected", "threshold": 0.5, "min_size": 4},
    )
    return model


def _same_objects(a, b):
    """Equal labels up to renumbering."""
    assert a.max() == b.max() and np.array_equal(a > 0, b > 0)
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    assert pairs.shape[1] == a.max() + 1  # one partner per object, background with background


def test_blockwise_rgb_model_equals_whole_image_on_rgb_and_grey_images():
    model = _rgb_model()
    assert get_metadata(model)["input_transform"] == RGB
    png, _ = _he_image(seed=1, shape=(96, 104))
    kw = dict(progress=False, blend="none")
    whole = predict_instances(model, png, **kw)
    labels, _ = predict_instances_blocks(model, png, block=32, margin=16, **kw)
    assert whole.max() >= 8  # the nuclei are found
    _same_objects(labels, whole)
    rgba = np.concatenate([png, np.zeros((*png.shape[:2], 1), np.uint8)], axis=-1)
    _same_objects(predict_instances_blocks(model, rgba, block=32, margin=16, **kw)[0], whole)
    grey = png.astype(np.float32).mean(axis=-1)  # replicated to R = G = B by the transform
    grey_whole = predict_instances(model, grey, **kw)
    assert grey_whole.max() >= 8
    _same_objects(predict_instances_blocks(model, grey, block=32, margin=16, **kw)[0], grey_whole)


def test_dask_input_gets_the_input_transform_lazily_and_as_numpy_does():
    da = pytest.importorskip("dask.array")
    model = _rgb_model()
    png, _ = _he_image(seed=2, shape=(80, 96))
    kw = dict(progress=False, blend="none", tile=48, overlap=16)
    expected = predict_tiled(model, png, **kw)
    for image in (png, png.astype(np.float32).mean(axis=-1)):  # RGB, and grey -> R = G = B
        lazy = predict_tiled(model, da.from_array(image, chunks=(40, 48, *image.shape[2:])), **kw)
        assert type(lazy).__module__.startswith("dask")
        want = expected if image.ndim == 3 else predict_tiled(model, image, **kw)
        np.testing.assert_allclose(lazy.compute(), want, atol=1e-5)


def test_memory_mapped_input_is_transformed_tile_by_tile_as_in_memory(tmp_path):
    model = _rgb_model()
    png, _ = _he_image(seed=4, shape=(80, 96))
    np.save(tmp_path / "he.npy", png)
    mapped = np.load(tmp_path / "he.npy", mmap_mode="r")
    kw = dict(progress=False, blend="none", tile=48, overlap=16)
    lazy, whole = predict_tiled(model, mapped, **kw), predict_tiled(model, png, **kw)
    np.testing.assert_array_equal(lazy, whole)
    np.testing.assert_array_equal(np.load(tmp_path / "he.npy"), png)  # the input is untouched


def _fake_dsb(folder: Path):
    """A two-image DSB-like folder: one H&E (colour) image, one fluorescence image."""
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    rows = ["id,modality"]
    for image_id, modality, seed in (("he1", "color", 2), ("fl1", "fluo", 3)):
        png, lab = _he_image(seed=seed, shape=(48, 56))
        if modality == "fluo":
            grey = np.where(lab > 0, 200, 15).astype(np.uint8)
            png = np.repeat(grey[..., None], 3, axis=-1)
        Image.fromarray(png).save(folder / "images" / f"{image_id}.png")
        tifffile.imwrite(folder / "labels" / f"{image_id}.tif", lab.astype(np.uint16))
        rows.append(f"{image_id},{modality}")
    (folder / "index.csv").write_text("\n".join(rows) + "\n")


def test_packed_rgb_images_keep_three_channels_and_their_stain_copies(tmp_path):
    _fake_dsb(tmp_path / "dsb")
    ids = ["he1", "fl1", "he1~hed0"]
    nuclei_data.pack(tmp_path / "dsb", ids, RGB, tmp_path / "p.npz")
    images, labels, meta = nuclei_data.load_packed(tmp_path / "p.npz", ids)
    assert meta["transform"] == RGB and meta["normalization"] == nuclei_data.RGB_NORMALIZATION
    for i, x in zip(ids, images):
        img, _ = nuclei_data.read_pair(tmp_path / "dsb", i, RGB)
        assert x.shape == (48, 56, 3)
        np.testing.assert_allclose(
            x, nuclei_data.normalize(img, nuclei_data.RGB_NORMALIZATION), atol=1e-5
        )
    assert not np.array_equal(images[0], images[2])  # the stain copy differs in hue
    np.testing.assert_array_equal(images[1][..., 0], images[1][..., 2])  # grey stays grey
    sampler = nuclei_data.PatchSampler(images, labels, patch=32, target="touching", seed=0)
    x, y = sampler.batch(4, np.random.default_rng(0))
    assert x.shape == (4, 32, 32, 3) and y.shape == (4, 32, 32) and x.dtype == np.float32
    grey, _ = nuclei_data.read_pair(tmp_path / "dsb", "he1", GRAY)
    assert grey.shape == (48, 56)
    sampler = nuclei_data.PatchSampler(
        [nuclei_data.normalize(grey)], labels[:1], patch=32, target="touching", seed=0
    )
    assert sampler.batch(2)[0].shape == (2, 32, 32, 1)


def test_grey_weights_widened_to_rgb_give_the_grey_model_on_grey_images():
    """--init of a grey model into an RGB one: a third of the first kernel on each channel, so
    a grey image replicated to R = G = B gives exactly the grey model's output."""
    import train_pretrained_nuclei as trainer

    keras.utils.set_random_seed(2)
    grey = trainer.build_model(3, 2, 4, channels=1)
    rgb = trainer.build_model(3, 2, 4, channels=3)
    rgb.set_weights(
        trainer.widened_weights(grey.get_weights(), [w.shape for w in rgb.get_weights()])
    )
    x = np.random.default_rng(0).random((1, 32, 32, 1)).astype(np.float32)
    want = grey.predict_on_batch(x)
    got = rgb.predict_on_batch(np.repeat(x, 3, axis=-1))
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(want, want.mean())  # a model that does something
    with pytest.raises(SystemExit, match=r"cannot become"):
        trainer.widened_weights(grey.get_weights(), [(1, 1)] * len(grey.get_weights()))


def test_averaged_weights_are_the_mean_of_two_models():
    """--average-with: the saved weights are the element-wise mean (batch-norm statistics too);
    models of another architecture are refused."""
    import train_pretrained_nuclei as trainer

    keras.utils.set_random_seed(3)
    a, b = trainer.build_model(3, 2, 4, channels=3), trainer.build_model(3, 2, 4, channels=3)
    assert not np.allclose(a.get_weights()[0], b.get_weights()[0])
    mean = trainer.averaged_weights(a.get_weights(), b.get_weights())
    for m, x, y in zip(mean, a.get_weights(), b.get_weights(), strict=True):
        assert m.dtype == x.dtype == np.float32
        np.testing.assert_allclose(m, (x + y) / 2, rtol=1e-6)
    other = trainer.build_model(3, 2, 8, channels=3)
    with pytest.raises(SystemExit, match=r"differ in architecture"):
        trainer.averaged_weights(a.get_weights(), other.get_weights())


def test_the_shipped_input_transform_is_the_training_one_plus_the_inference_keys():
    """tools/train_pretrained_nuclei.py records ``for_inference`` of what it trained with (the
    shipped settings file says the same), and ``--tune-only`` reads training images with the
    training transform (packs stay integer: a restored plateau is not)."""
    import json

    shipped = json.loads((ROOT / "sciconv" / "pretrained" / "nuclei.json").read_text())
    assert shipped["input_transform"] == nuclei_data.for_inference(RGB)
    assert nuclei_data.for_inference(RGB)["restore_saturated"] is True
    assert nuclei_data.for_training(shipped["input_transform"]) == RGB
    assert nuclei_data.for_inference(None) is None and nuclei_data.for_training(None) is None


def test_patch_sampler_blurs_the_share_of_patches_asked():
    """``--blur P``: a share P of the training patches out of focus (Gaussian, sigma in
    BLUR_SIGMA px, channels apart), the labels untouched; P = 0 draws exactly as before."""
    rng = np.random.default_rng(3)
    img = rng.random((64, 64, 3)).astype(np.float32)  # white noise: blur shows as lost variance
    lab = np.zeros((64, 64), np.int32)
    lab[10:30, 10:30] = 1
    kw = {"patch": 32, "target": "touching", "seed": 0, "zoom": (1.0, 1.0), "intensity": False}
    sharp = nuclei_data.PatchSampler([img], [lab], **kw)
    never = nuclei_data.PatchSampler([img], [lab], blur=0.0, **kw)
    always = nuclei_data.PatchSampler([img], [lab], blur=1.0, **kw)

    def patches(sampler):  # one generator per patch: the same crops and flips in each sampler
        xy = [sampler.one(np.random.default_rng([1, k])) for k in range(8)]
        return np.stack([x for x, _ in xy]), np.stack([y for _, y in xy])

    xs, ys = patches(sharp)
    x0, _ = patches(never)
    np.testing.assert_array_equal(x0, xs)
    xb, yb = patches(always)
    np.testing.assert_array_equal(yb, ys)  # the targets as they were
    assert xs.std() > 0.28 and xb.std() < 0.6 * xs.std()  # sigma >= 0.5 halves white noise
    np.testing.assert_allclose(xb.mean(), xs.mean(), atol=0.02)  # blur keeps the level
    half = nuclei_data.PatchSampler([img], [lab], blur=0.5, **kw).batch(200)[0]
    blurred = half.reshape(200, -1).std(axis=1) < 0.6 * xs.std()
    assert 0.35 < blurred.mean() < 0.65
