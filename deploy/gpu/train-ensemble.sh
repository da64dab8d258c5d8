#!/usr/bin/env bash
# Train, export and evaluate the CNN ensemble on a one-GPU machine without internet access.
#
#   OUT=/path/to/out bash deploy/gpu/train-ensemble.sh [CONFIG]      (from the repository root)
#
# Installs the wheels in .whl/ (what the machine's Python lacks) into $SITE (INSTALL_WHEELS=0
# where python3 has them already), prints the GPUs, and runs deploy/gpu/train_ensemble.py
# with CONFIG (default configs/train/ensemble-gpu.toml).
# What comes back lies under $OUT: models/{manifest.toml,photometry_mlp.onnx,<member>.onnx},
# report.json and report.png (rewritten after every step), train.log. Simulated sets,
# checkpoints and per-set reports stay under $WORK. Rerunning with the same $WORK resumes.
set -euo pipefail

: "${OUT:?set OUT to the folder for the outputs}"
CONFIG=${1:-configs/train/ensemble-gpu.toml}
WORK=${WORK:-/tmp/lensflow-train}
SITE=${SITE:-/tmp/site}
mkdir -p "$OUT" "$WORK"
LOG="$OUT/train.log"

say() { echo "$(date -u +%Y-%m-%dT%H:%M:%S) $*" | tee -a "$LOG"; }

say "start: $(hostname), $(nproc) cores, config $CONFIG"
if [ "${INSTALL_WHEELS:-1}" = 1 ]; then
    say "installing $(ls .whl/*.whl | wc -l) wheels into $SITE"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .whl/*.whl 2>&1 | tee -a "$LOG"
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# The training process keeps a few threads for its own CPU work; ONNX Runtime sets its own
# thread counts and the Dask simulation workers run one thread each.
export OMP_NUM_THREADS=4 MKL_NUM_THREADS=4 OPENBLAS_NUM_THREADS=4
nvidia-smi -L 2>&1 | tee -a "$LOG" || say "nvidia-smi failed"
python3 -c 'import sys, torch, onnxruntime, numpy; print(sys.version.split()[0], "torch",
    torch.__version__, "cuda", torch.cuda.is_available(), "onnxruntime", onnxruntime.__version__,
    "numpy", numpy.__version__)' 2>&1 | tee -a "$LOG"
df -h /tmp | tail -1 | tee -a "$LOG"
say "training"
status=0
python3 deploy/gpu/train_ensemble.py --config "$CONFIG" --out "$OUT" --work "$WORK" || status=$?
say "finished with status $status; outputs:"
(cd "$OUT" && find . -type f -printf '%s\t%p\n' | sort -k2) 2>&1 | tee -a "$LOG"
exit "$status"
