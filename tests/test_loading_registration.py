"""Plain ``keras.models.load_model`` on a sciconv model in a fresh interpreter.

The README said it "works once sciconv is imported"; ``import sciconv`` is lazy and imports no
Keras, so Keras then stopped at "Could not locate class 'SciconvMetadata'". The README now says
what works, ``import sciconv.models`` first, and these tests hold it to that.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sciconv as sc

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _fresh(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=240
    )


@pytest.mark.timeout(300)
def test_keras_load_model_works_in_a_fresh_process_after_import_sciconv_models(tmp_path):
    model = sc.models.segmenter((None, None, 1), num_classes=2, depth=1, filters=2, dropout=0.1)
    sc.models.set_metadata(model, postprocess={"threshold": 0.4})
    model.compile(
        optimizer="adam", loss=sc.losses.DiceLoss(smooth=0.5), metrics=[sc.metrics.IoU(2)]
    )
    path = tmp_path / "seg.keras"
    model.save(path)
    x = np.random.default_rng(0).normal(size=(1, 16, 16, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code = f"""
import sys
import sciconv
assert "keras" not in sys.modules and "tensorflow" not in sys.modules, "import sciconv is lazy"
import sciconv.models  # what the README says to import first
import keras
import numpy as np
m = keras.models.load_model({str(path)!r})
np.save("pred.npy", m.predict(np.load("x.npy"), verbose=0))
print(type(m.loss).__name__, m.loss.get_config()["smooth"])
print(sciconv.models.get_metadata(m)["postprocess"])
"""
    proc = _fresh(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[:2] == ["DiceLoss 0.5", "{'threshold': 0.4}"]
    want = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(np.load(tmp_path / "pred.npy"), want, atol=1e-6)


@pytest.mark.timeout(300)
def test_sciconv_load_registers_the_sciconv_layers_a_file_names(tmp_path):
    # review: a model holding sciconv.augment's RandomD4 (not imported by sciconv.models) was
    # refused in a fresh process as "written by a newer sciconv", trust=True or not
    import keras

    from sciconv.augment import RandomD4

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Conv2D(2, 3, padding="same")(RandomD4()(inputs))
    path = tmp_path / "aug.keras"
    keras.Model(inputs, outputs).save(path)
    code = f"""
import sys
import sciconv.models
assert "sciconv.augment" not in sys.modules
m = sciconv.models.load({str(path)!r}, compile=False)
print([type(layer).__name__ for layer in m.layers])
"""
    proc = _fresh(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[0] == "['InputLayer', 'RandomD4', 'Conv2D']"


@pytest.mark.parametrize(
    "page", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_the_docs_say_what_keras_load_model_needs(page):
    """Every sentence of the README and the docs pages about plain keras.models.load_model
    names the import it needs (docs/architecture.md still said "once sciconv is imported")."""
    text = " ".join(page.read_text(encoding="utf-8").split())
    sentences = [s for s in re.split(r"(?<=[.!?;])\s", text) if "keras.models.load_model" in s]
    assert sentences or page != README
    for sentence in sentences:
        assert "import sciconv.models" in sentence, sentence
    assert "once sciconv is imported" not in text


def test_import_sciconv_stays_free_of_keras(tmp_path):
    """Why the README does not promise registration on `import sciconv`: that would import
    Keras and TensorFlow (3 s) into every `import sciconv`."""
    code = "import sys, sciconv; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    proc = _fresh(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_weights_of_another_model_are_refused_in_a_few_lines(tmp_path):
    """QA: a .keras whose weights belong to another architecture gave a correct ModelError of
    9.9 kB, Keras' message quoting whole weight arrays (printed by sciconv predict too)."""
    import zipfile

    from sciconv.errors import ModelError

    sc.models.segmenter((None, None, 1), 2, depth=2, filters=4).save(tmp_path / "a.keras")
    sc.models.segmenter((None, None, 1), 2, depth=3, filters=4).save(tmp_path / "b.keras")
    with (
        zipfile.ZipFile(tmp_path / "bad.keras", "w") as bad,
        zipfile.ZipFile(tmp_path / "a.keras") as a,
        zipfile.ZipFile(tmp_path / "b.keras") as b,
    ):
        for name in a.namelist():
            bad.writestr(name, (b if name == "model.weights.h5" else a).read(name))
    with pytest.raises(ModelError, match="cannot build the model") as caught:
        sc.models.load(tmp_path / "bad.keras")
    assert len(str(caught.value)) < 800 and "bad.keras" in str(caught.value)
