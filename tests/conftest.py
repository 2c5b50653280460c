"""Shared fixtures. Tests run against the installed package with MPLBACKEND=Agg."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# bioimageio.core sets KERAS_BACKEND to "torch" on import when it is unset, and every subprocess
# started afterwards (workers, notebooks, the CLI) would then load Keras on torch: pin it.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The suite's numerical references are float32 (tiled == whole-image call, uncertainty == its
# definition, ...). On a CPU with native bfloat16 (AVX512-BF16/AMX) precision="auto" would run
# some models in bfloat16 after a timing, so those comparisons would depend on the machine:
# pin "auto" to float32 here. The bfloat16 paths and the "auto" choice have their own tests
# (test_inference_speed.py, test_cli_precision.py), which pass precision explicitly or unset this.
os.environ.setdefault("SCICONV_PRECISION", "float32")

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The bundled sample data folder (``data/``)."""
    return DATA


@pytest.fixture(scope="session", autouse=True)
def bundled_data_untouched():
    """No test may modify a bundled input file: checksums before and after the whole session."""
    files = sorted(p for p in DATA.rglob("*") if p.is_file()) if DATA.exists() else []
    before = {p: sha256(p) for p in files}
    yield
    changed = [str(p) for p in files if not p.exists() or sha256(p) != before[p]]
    assert not changed, f"bundled data modified by the test suite: {changed}"


@pytest.fixture(scope="session")
def enlarged_real_nuclei():
    """``enlarge(n, factor)``: the first ``n`` bundled real nuclei images enlarged ``factor``
    times (bilinear) with their labels (nearest), as [(name, image float32, labels int32)]."""

    def enlarge(n: int, factor: float):
        import numpy as np
        import tifffile
        from skimage.transform import rescale, resize

        folder = DATA / "real" / "nuclei"
        out = []
        for path in sorted((folder / "images").glob("*.tif"))[:n]:
            image = rescale(tifffile.imread(path).astype(np.float32), factor, order=1)
            truth = tifffile.imread(folder / "labels" / path.name)
            truth = resize(truth, image.shape, order=0, preserve_range=True, anti_aliasing=False)
            out.append((path.name, image.astype(np.float32), truth.astype(np.int32)))
        return out

    return enlarge


@pytest.fixture(scope="session")
def threshold_model():
    """A deterministic segmenter: foreground probability sigmoid(2 x) of the pixel value (a
    1 x 1 convolution into a softmax), so the labels follow the pixels."""
    import keras

    inputs = keras.Input((None, None, 1))
    logits = keras.layers.Conv2D(
        2, 1, kernel_initializer=keras.initializers.Constant([[[[-1.0, 1.0]]]])
    )(inputs)
    return keras.Model(inputs, keras.layers.Softmax()(logits), name="threshold")


class _FileHandler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes]  # set per server by the fixture
    counts: dict[str, int]

    def do_GET(self):
        self.counts[self.path] = self.counts.get(self.path, 0) + 1
        if self.path.startswith("/truncated/"):
            body = self.files["/" + self.path.split("/", 2)[2]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 3])  # then the connection closes early
            self.wfile.flush()
            self.close_connection = True
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A threaded HTTP server on a free port; yields (base_url, files, request counts)."""
    handler = type("Handler", (_FileHandler,), {"files": {}, "counts": {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.files, handler.counts
    httpd.shutdown()
    httpd.server_close()
