#!/usr/bin/env bash
# Train the shipped nuclei model on one GPU with Keras on JAX (no TensorFlow or astropy needed):
# RGB input, depth 3, 32 filters, in two stages of one run (tools/train_pretrained_nuclei.py's
# docstring): stage 1 from scratch (seed 0, lr 2e-3), stage 2 continued from it (seed 1, lr 6e-4)
# and saved as the mean of both end points (--average-with). Measured 2026-12-04 on an H200:
# stage 1 trained at 61.5 steps/s beside a second candidate on the same GPU (7 sampler workers
# each), stage 2 alone at 141.6 steps/s (14 workers): run one training at a time.
#
#   here (where ../shared/data/dsb2018_train and the sciconv venv are):
#     python tools/train_pretrained_nuclei.py --modalities fluo,color,gray_bright --input rgb \
#         --pack /tmp/dsb_train_rgb.npz && cp ../shared/data/dsb2018_train/index.csv .gpu/
#     python -c "import lzma, shutil; shutil.copyfileobj(open('/tmp/dsb_train_rgb.npz', 'rb'),
#         lzma.open('.gpu/dsb_train_rgb.npz.xz', 'wb'), 1 << 22)"     # (after np.savez, not
#         savez_compressed: 210 MB raw -> 31.7 MB, against 38.6 MB deflated)
#   The xz pack (31.7 MB), the repo (26 MB) and the keras, namex and optree wheels in .whl/
#   (2.9 MB) fit the device's 64 MiB carry; .whl/ is installed when Keras is missing there.
#   On the GPU machine (carry .gpu and .whl; about 5 minutes of training with the recorded step
#   counts, 4 with the defaults below as budgets):
#     OUT=/some/dir bash tools/train_pretrained_gpu.sh
#   STEPS1 / STEPS2 (defaults: the shipped 17799 / 14423) fix the step counts; BUDGET1 / BUDGET2
#   (seconds) replace them with time budgets; WARMUP1 / WARMUP2 (200 / 100) the warm-up steps;
#   BLUR (0) the share of patches out of focus (--blur; the CPU comparison at 500 steps, in
#   benchmarks/README.md, gained on blurred grey and lost 0.018 on native fluorescence at 0.3);
#   DATA (.gpu) the folder of index.csv and the pack. Back here, tune the post-processing on the
#   validation ids and write nuclei.json (--tune-only reads the input transform and
#   normalization the model recorded):
#     python tools/train_pretrained_nuclei.py --modalities fluo,color,gray_bright --tune-only \
#         --out OUT/nuclei.keras
set -uo pipefail
OUT=${OUT:-/tmp/nuclei_gpu}
WORKERS=${WORKERS:-14}
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}  # where Keras is already installed: WHEELS=none
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
DATA=${DATA:-.gpu}
PACK=$DATA/dsb_train_rgb.npz
if [ ! -f "$PACK" ] && [ -f "$PACK.xz" ]; then
    "$PY" -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]),
open(sys.argv[2], 'wb'), 1 << 22)" "$PACK.xz" /tmp/dsb_train_rgb.npz || exit 1
    PACK=/tmp/dsb_train_rgb.npz
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
mkdir -p "$OUT/stage1"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee "$OUT/gpu.txt"
common=(--data "$DATA" --packed "$PACK" --input rgb --modalities fluo,color,gray_bright
        --batch 16 --depth 3 --filters 32 --patch 128 --target touching --no-tune
        --workers "$WORKERS" --log-every 2000 --overwrite --blur "${BLUR:-0}")
length() {  # length STEPS BUDGET: --steps, or --time-budget where a budget is given
    if [ -n "$2" ]; then echo "--time-budget $2"; else echo "--steps $1"; fi
}
# shellcheck disable=SC2046
"$PY" tools/train_pretrained_nuclei.py "${common[@]}" --seed 0 --lr 2e-3 \
    --warmup-steps "${WARMUP1:-200}" \
    $(length "${STEPS1:-17799}" "${BUDGET1:-}") --out "$OUT/stage1/nuclei.keras" \
    >"$OUT/stage1/log.txt" 2>&1 || { tail -n 20 "$OUT/stage1/log.txt"; exit 1; }
# shellcheck disable=SC2046
"$PY" tools/train_pretrained_nuclei.py "${common[@]}" --seed 1 --lr 6e-4 \
    --warmup-steps "${WARMUP2:-100}" \
    $(length "${STEPS2:-14423}" "${BUDGET2:-}") --init "$OUT/stage1/nuclei.keras" \
    --average-with "$OUT/stage1/nuclei.keras" --out "$OUT/nuclei.keras" >"$OUT/log.txt" 2>&1
rc=$?
tail -n 4 "$OUT/stage1/log.txt" "$OUT/log.txt"
echo "exit code: $rc"
exit $rc
