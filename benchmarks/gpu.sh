#!/usr/bin/env bash
# The GPU checks and the GPU rows 3 and 5 of speed.py, as one script for a machine with a GPU:
#   the main job, a stacked learning-rate sweep, mixed precision and DDP on one GPU, then the speed rows.
#
#   bash benchmarks/gpu.sh [RUNS_DIR]       (ACCEL=cpu bash benchmarks/gpu.sh: the same on the CPU)
#
# The runs go to RUNS_DIR (/tmp/gpu-checks); the speed table also to $OUT/speed.txt where $OUT is set (the
# device tool's folder of files that come back).
#
# The lent GPU machine has torch, Lightning, pandas, TensorBoard and matplotlib but not Hydra, and reaches
# no package index. Carry Hydra's wheels in .whl/ (git-ignored), made on a machine that reaches PyPI:
#   pip download --no-deps -d .whl hydra-core==1.3.8 omegaconf==2.3.1   (what CI installs today)
#   pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3
# and name .whl in the device tool's carry: run(command="bash benchmarks/gpu.sh", carry=[".whl"]).
set -euo pipefail
cd "$(dirname "$0")/.."
ACCEL=${ACCEL:-gpu}
DEVICE=$([ "$ACCEL" = gpu ] && echo cuda || echo cpu)
out=${1:-/tmp/gpu-checks}
mkdir -p "$out"
if ! python3 -c "import hydra" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
[ "$ACCEL" = gpu ] && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

run() {  # one check: the command, then its last lines
    echo "== $*"
    python3 "$@" 2>&1 | tail -n 8
}
run train.py "trainer.accelerator=$ACCEL" "hydra.run.dir=$out/main"
run train.py "trainer.accelerator=$ACCEL" data=boston trainer.precision=bf16-mixed "hydra.run.dir=$out/bf16"
run train.py "trainer.accelerator=$ACCEL" experiment=ch1_gradient_descent "hydra.run.dir=$out/ch1"  # its figures
run train.py "trainer.accelerator=$ACCEL" trainer.max_epochs=20 "hydra.run.dir=$out/resumed"
run train.py "trainer.accelerator=$ACCEL" trainer.max_epochs=40 ckpt_path=last "hydra.run.dir=$out/resumed"
run train.py -m "trainer.accelerator=$ACCEL" hydra/launcher=stacked optimizer.lr=1e-3,1e-2,1e-1 "hydra.sweep.dir=$out/sweep"
if [ "$ACCEL" = gpu ]; then
    run train.py trainer=ddp trainer.devices=1 "hydra.run.dir=$out/ddp"
    run train.py trainer.accelerator=gpu trainer.precision=16-mixed "hydra.run.dir=$out/fp16"
fi
python3 - "$out" <<'EOF'
import json, pathlib, sys
runs = sorted(pathlib.Path(sys.argv[1]).glob("**/metrics.json"))
for path in runs:
    m = json.loads(path.read_text())
    test = {k: round(v, 4) for k, v in m.items() if k.startswith("test/") and isinstance(v, float)}
    print(f"{path.parent}: {m['status']}, {m.get('epochs')} epochs, {test}")
bad = [p for p in runs if json.loads(p.read_text())["status"] != "completed"]
sys.exit(f"not completed: {', '.join(map(str, bad))}" if bad or not runs else 0)
EOF
python3 benchmarks/speed.py --device "$DEVICE" --rows 3,5 | tee "${OUT:-$out}/speed.txt"
