#!/usr/bin/env bash
# One device call after the kit (../shared/gpu): the CUDA tests, the end-to-end
# `process --device cuda` against the read+write floor on the issue's workload
# (16 files of 8 ch x 60 s, 24-bit 44.1 kHz), then bench/gpu_probe.py's breakdowns.
# Run from the project root on the device machine: bash bench/gpu_run.sh [probe sections]
# (SKIP_PYTEST=1 leaves out the tests, PROBE_S caps the probe's seconds).
# Wheels the image lacks (soundfile, soxr, ...) are installed from .whl/ when present.
set -u
export PYTHONUNBUFFERED=1 TRITON_DEFAULT_FP_FUSION=1
PY=${PY:-python3}
S=$(mktemp -d); OUT=${OUT:-$S/out}; mkdir -p "$OUT"; export OUT
ROOT=$PWD
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/steps.txt"; }
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $S/site .whl/*.whl 2>&1 | tail -3
  export PYTHONPATH=$S/site:$ROOT
else
  export PYTHONPATH=$ROOT
fi
mkdir -p $S/bin; printf '#!/bin/sh\nexec %s -m fxcli "$@"\n' "$PY" > $S/bin/fxcli; chmod +x $S/bin/fxcli
export PATH=$S/bin:$PATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee -a "$OUT/steps.txt"
# numba's cache for the CPU references, filled while the files are generated
( timeout 120 $PY - >> "$OUT/steps.txt" 2>&1 <<'PYEOF'
import numpy as np, torch
from fxcli.engine.runner import process_array
from fxcli.preset.loader import load_preset
from fxcli.preset.build import build_step
for name in ["iir_chain", "fir_chain", "api_chain", "mastering", "voice"]:
    for dt in (np.float32, np.float64):
        steps = [build_step(c, 48000) for c in load_preset(name).steps]
        process_array(steps, torch.from_numpy((0.1 * np.random.default_rng(0).standard_normal((2, 48000))).astype(dt)), chunk=20000)
print("warm done")
PYEOF
) & WARM=$!

el "files: 16 x 8 ch x 60 s PCM_24 44.1 kHz"
export W=$S/e2e; mkdir -p $W/in
$PY - <<'PYEOF'
import os, numpy as np, soundfile as sf
W = os.environ['W']
rng = np.random.default_rng(0)
for i in range(16):
    sf.write(f'{W}/in/f{i:02d}.wav', (rng.standard_normal((60 * 44100, 8)) * 0.1).astype(np.float32), 44100, subtype='PCM_24')
PYEOF
wait $WARM
if [ -z "${SKIP_PYTEST:-}" ]; then
  el "pytest -m cuda"
  timeout 150 $PY -m pytest -q -p no:cacheprovider -m cuda --timeout 120 -rfEs tests/ > "$OUT/pytest_cuda.txt" 2>&1; echo "rc=$?" >> "$OUT/pytest_cuda.txt"
  tail -15 "$OUT/pytest_cuda.txt" | cut -c1-300
fi

el "end to end"
tm() { local s=$(date +%s%N); "$@" > /dev/null 2>>"$OUT/e2e.txt"; local rc=$?; local e=$(date +%s%N); echo "$(( (e - s) / 1000000 )) ms rc=$rc :: ${*: -6}" | tee -a "$OUT/e2e.txt"; }
fxcli process $W/in/f00.wav $W/warm -p api_chain --device cuda -q > /dev/null 2>&1
tm $PY -c "
import glob, soundfile as sf
for p in sorted(glob.glob('$W/in/*.wav')):
    with sf.SoundFile(p) as r, sf.SoundFile(p.replace('/in/', '/floor_'),'w',r.samplerate,r.channels,'PCM_24') as w:
        for b in r.blocks(blocksize=441000, dtype='float32'): w.write(b)"
tm fxcli process $W/in $W/o_cuda -p api_chain --device cuda -q
tm fxcli process $W/in $W/o_cuda30 -p api_chain --device cuda -q --chunk-seconds 30
tm fxcli process $W/in $W/o_cuda_j1 -p api_chain --device cuda -q --jobs 1
tm fxcli process $W/in $W/o_cpu -p api_chain --device cpu -q
tm $PY -c "import torch; torch.zeros(1, device='cuda'); import fxcli.cli.app"
$PY - <<'PYEOF' 2>&1 | tee -a "$OUT/e2e.txt"
import os, numpy as np, soundfile as sf
W = os.environ['W']
for d in ("o_cuda", "o_cuda30", "o_cuda_j1"):
    x, _ = sf.read(f"{W}/{d}/f00.wav", dtype="int32"); y, _ = sf.read(f"{W}/o_cpu/f00.wav", dtype="int32")
    print(d, "vs cpu f00 max diff (24-bit LSB):", int(np.max(np.abs(x.astype(np.int64) - y))) // 256)
PYEOF
el "probe"
timeout ${PROBE_S:-200} $PY bench/gpu_probe.py "$@" > "$OUT/probe.txt" 2>&1; echo "rc=$?" >> "$OUT/probe.txt"
grep -v '^ ' "$OUT/probe.txt" | grep '"what"\|rc=\|^--' | cut -c1-330
el done
