"""The README's ONNX recipe, run as written, reproduces predict_tiled on sides that are not
multiples of the U-Net's divisor (padding only the bottom and right was 0.72 off at borders)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

import sciconv as sc
from sciconv.models.export import PADDING

README = Path(__file__).resolve().parents[1] / "README.md"


def _recipe() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    [code] = [b for b in blocks if "custom_metadata_map" in b]
    assert '"seg.onnx"' in code and "image" in code
    return code


@pytest.fixture(scope="module")
def models():
    grey = sc.models.segmenter((None, None, 1), num_classes=3, depth=2, filters=4)
    return {"pretrained nuclei": sc.models.pretrained("nuclei"), "grey depth 2": grey}


@pytest.mark.parametrize("name", ["pretrained nuclei", "grey depth 2"])
def test_readme_onnx_recipe_reproduces_predict_tiled(tmp_path, monkeypatch, models, name):
    model = models[name]
    code = _recipe()
    sc.models.export(model, tmp_path / "seg.onnx")
    monkeypatch.chdir(tmp_path)
    channels = model.inputs[0].shape[-1]
    divisor = sc.models.get_metadata(model)["divisor"]
    rng = np.random.default_rng(1)
    for h, w in [(37, 101), (123, 77)]:
        assert h % divisor and w % divisor
        shape = (h, w, 3) if channels == 3 else (h, w)  # a grey model takes a 2-D image
        image = (rng.random(shape) * 200 + 20).astype(np.float32)
        namespace = {"image": image}
        exec(compile(code, str(README), "exec"), namespace)  # the README's lines, as written
        want = np.asarray(sc.inference.predict_tiled(model, image, precision="float32",
                                                     progress=False))  # fmt: skip
        prob = namespace["prob"]
        assert prob.shape == want.shape == (h, w, model.outputs[0].shape[-1])
        np.testing.assert_allclose(prob, want, atol=1e-5, err_msg=f"{name} {h}x{w}")
        assert namespace["labels"].shape == (h, w)
        # bad pixels: the recipe's fill feeds the network what predict_tiled feeds it
        image[10:20, 30:45] = np.nan
        namespace = {"image": image}
        exec(compile(code, str(README), "exec"), namespace)
        want = np.asarray(sc.inference.predict_tiled(model, image, precision="float32",
                                                     progress=False))  # fmt: skip
        good = np.isfinite(want)
        assert (~good).any() and good.any()
        np.testing.assert_allclose(namespace["prob"][good], want[good], atol=1e-5)
        # the padding the file records is the one the recipe applies
        assert json.loads(namespace["props"]["padding"]) == PADDING
