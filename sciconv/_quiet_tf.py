"""Import TensorFlow without its native start-up chatter (absl/CUDA lines on stderr).

TensorFlow's C++ start-up messages ("All log messages before absl::InitializeLog() ...", "Could
not find cuda drivers ...") ignore ``TF_CPP_MIN_LOG_LEVEL``. The command line imports TensorFlow
through :func:`import_tensorflow_quietly`, so its output holds only sciconv's own lines.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

__all__ = ["import_tensorflow_quietly"]

_TF_CHATTER = re.compile(
    r"^[IWEF]\d{4} |absl::InitializeLog|cudart_stub|cuda_platform|cuInit|"
    r"cpu_feature_guard|oneDNN|TensorFlow binary is optimized"
)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and list its devices with file descriptor 2 redirected.

    TensorFlow's native start-up lines (absl/CUDA, which ignore ``TF_CPP_MIN_LOG_LEVEL``) are
    dropped; any other line is written to ``sys.stderr`` afterwards. A second call is cheap.

    Examples
    --------
    >>> import_tensorflow_quietly()  # doctest: +SKIP
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # descriptor 2 closed (a daemon's child): nothing to quieten
        import tensorflow as tf

        tf.config.list_physical_devices()
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        for line in sink.read().decode(errors="replace").splitlines(keepends=True):
            if not _TF_CHATTER.search(line):
                sys.stderr.write(line)
