#!/usr/bin/env bash
# The GPU check (../shared/GPU.md, "On a GPU machine"): one command for a GPU machine that has
# nvcc, PyTorch, compute-sanitizer and ncu but no Node.js, no node_modules and no network.
#
#   bash scripts/gpu-check/pack.sh          # here, once: fills .gpu/ (Node binary, the few
#                                           # node_modules the build needs, the addon built here)
#   bash scripts/gpu-check.sh OUT_DIR       # there, with .gpu carried along
#
# Steps, the most valuable first; each runs in a subshell under a timeout, and its outcome is
# written to OUT_DIR/summary.txt as soon as it ends, so that a run cut short still says what ran:
#   1 env        nvidia-smi, nvcc, python/torch, compute-sanitizer, OS     -> env.txt
#                (no GPU or driver: the check stops here, exit 2)
#   2 build      the CUDA addon, with the Node from .gpu/node.xz (unpacked to /tmp/node when no
#                `node` is on the PATH) and node_modules from .gpu/node_modules.tar.xz. The addon
#                built here (.gpu/prebuilt/, pack.sh) is used when it loads there and its
#                selfTest passes (it is copied to build-cuda/Release, where the library looks):
#                device time is short, and CI builds the same sources with the same nvcc. Else,
#                or with CG_GPU_CHECK_BUILD=1, it is built there:
#                COMPRESSED_GEMM_REQUIRE_CUDA=1 node scripts/build-cuda.js, SASS for
#                $CG_GPU_CHECK_ARCHS (default 90a-real: the H200's); then probe() and selfTest().
#                If that build fails, the prebuilt addon is used whatever its selfTest said  -> build.log
#   3 probes     every probe kind through the real addon's runProbe, with the inputs of
#                test/cuda-sim/ptx.test.ts, against the ISA's formulas (scripts/gpu-check/
#                ptx-formulas.js); the dumps are fixtures for the simulator   -> probes.log, probes/dumps.json
#   4 jest       the numerics suites on the cuda backend (jest.cuda.config.js: the suites and
#                float64 references that run on cuda-sim in CI, on the GPU), with the jest,
#                ts-jest and typescript of .gpu/node_modules.tar.xz and the CPU addon of
#                build/Release (or .gpu/prebuilt's: the routes that fall back to the CPU, and
#                the tests' helpers, use it)                                             -> appended to probes.log
#   5 js-checks  the formulas' ISA-vs-CuTe agreement, and (when the addon was built there) the
#                addon built here against the fresh build's dumps           -> appended to probes.log
#   6 timings    torch.matmul fp16/bf16 (cuBLAS), 8192^3 and LLM shapes, CUDA events, medians,
#                inputs rotated past the L2 (scripts/gpu-check/torch_baseline.py),
#                and our own kernels beside them (scripts/gpu-check/bench-ours.js: the dense,
#                2:4 and INT4 GEMMs and fused LoRA, timeGemm's device events, the same shapes and
#                rotation; and whether copyToHostAsync returns before the GEMMs queued ahead of
#                it finish)                                                   -> timings.json, timings.txt
#   7 sanitizer  compute-sanitizer memcheck over the probes, racecheck over the mma tile probe
#                (skipped when compute-sanitizer is absent)                   -> sanitizer.log
# They run in the order 1 2 3 6 4 5 7 (the timings before jest: see the end of this file).
# OUT_DIR holds at most 8 files (the device tool brings back 8): summary.txt, env.txt, build.log,
# probes.log, probes/dumps.json, sanitizer.log, timings.json, timings.txt.
#
# Exit: 0 every step passed (or was skipped for want of a tool), 1 some step failed, 2 no GPU or
# driver (or bad usage). Environment:
#   CG_GPU_CHECK_BUDGET_S   seconds for the whole run (default 510); each step's timeout is cut to
#                           what is left, and a step with under 20 s left is skipped
#   CG_GPU_CHECK_ARCHS      CMake CUDA architectures of the build there (default 90a-real)
#   CG_GPU_CHECK_STEPS      which steps to run (default "1 2 3 4 5 6 7")
#   CG_GPU_CHECK_BUILD=1    build the addon there even when the prebuilt one works
#   CG_GPU_CHECK_ALLOW_NO_GPU=1   go on without a GPU (to try the script itself; not for results)
#   CG_GPU_CHECK_QUICK=1    fewer timing repetitions
# Measures the card as found: it never changes clocks or settings.
set -u

if [[ $# -ne 1 || -z "${1:-}" ]]; then
  echo "usage: bash scripts/gpu-check.sh OUT_DIR" >&2
  exit 2
fi
mkdir -p "$1/probes" || { echo "gpu-check: cannot create $1" >&2; exit 2; }
OUT=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
WORK=$(mktemp -d /tmp/cg-gpu-check.XXXXXX) || exit 2
SUMMARY="$OUT/summary.txt"
BUDGET=${CG_GPU_CHECK_BUDGET_S:-510}
STEPS=${CG_GPU_CHECK_STEPS:-1 2 3 4 5 6 7}
START=$(date +%s)
FAILED=0
export OUT ROOT WORK

# nvcc and compute-sanitizer live in the CUDA toolkit's bin/, which may not be on the PATH.
for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do
  [[ -d "$d" ]] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$PATH:$d" ;; esac
done
export PATH

{
  echo "compressed-gemm GPU check: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname 2>/dev/null || echo '?')"
  if git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
    echo "tree: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + local changes')"
  else
    echo "tree: (no git history here)"
  fi
  [[ -f "$ROOT/.gpu/MANIFEST.txt" ]] && sed -n '1,2p;/^prebuilt/p' "$ROOT/.gpu/MANIFEST.txt" | sed 's/^/.gpu: /'
  echo "budget: ${BUDGET} s; steps: $STEPS"
} > "$SUMMARY"

note() { printf '%s\n' "$*" > "$WORK/note"; }
export -f note

# run_step N NAME MAX_S LOG FUNCTION: runs FUNCTION in a subshell (bash -c) under a timeout cut
# to the budget left, its output into LOG (appended), and writes the step's line in summary.txt.
run_step() {
  local n=$1 name=$2 max=$3 log=$4 fn=$5
  case " $STEPS " in *" $n "*) ;; *) echo "step $n $name: SKIPPED (not in CG_GPU_CHECK_STEPS)" >> "$SUMMARY"; return 0 ;; esac
  local now left t rc status s0 s1
  now=$(date +%s)
  left=$((BUDGET - (now - START)))
  if ((left < 20)); then
    echo "step $n $name: SKIPPED (out of time: ${left} s of the ${BUDGET} s budget left)" >> "$SUMMARY"
    return 0
  fi
  t=$max
  ((t > left - 5)) && t=$((left - 5))
  rm -f "$WORK/note"
  echo "==== step $n $name ($(date -u +%H:%M:%S), timeout ${t} s) ====" >> "$log"
  s0=$(date +%s)
  # STEP_DEADLINE: when the timeout will stop the step (epoch seconds), for steps that pace themselves.
  STEP_DEADLINE=$((s0 + t)) timeout -k 10 "$t" bash -c "$fn" >> "$log" 2>&1
  rc=$?
  s1=$(date +%s)
  case $rc in
    0) status=PASS ;;
    77) status=SKIPPED ;;
    124 | 137) status="FAIL (timed out after ${t} s)"; FAILED=1 ;;
    *) status="FAIL (exit $rc)"; FAILED=1 ;;
  esac
  local msg=""
  [[ -s "$WORK/note" ]] && msg=" - $(head -c 600 "$WORK/note" | tr '\n' ' ')"
  echo "step $n $name: $status ($((s1 - s0)) s; log $(basename "$log"))$msg" >> "$SUMMARY"
  echo "==== step $n $name: $status ($((s1 - s0)) s) ====" >> "$log"
  return 0
}

# ---- 1. environment ---------------------------------------------------------------------------------
step_env() {
  sec() { echo; echo "## $*"; }
  sec "date, host, OS"
  date -u; uname -a; (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"); ldd --version 2>&1 | head -1
  echo "cpus: $(nproc)"; free -g 2>/dev/null | head -2
  sec "nvidia-smi"
  if command -v nvidia-smi >/dev/null; then
    timeout 30 nvidia-smi 2>&1
    sec "nvidia-smi -q (clocks, power, performance: as found, never changed)"
    timeout 30 nvidia-smi -q -d CLOCK,POWER,PERFORMANCE,ECC 2>&1 | head -150
  else
    echo "nvidia-smi: not found"
  fi
  sec "nvcc"; command -v nvcc && nvcc --version 2>&1 || echo "nvcc: not found"
  sec "cmake"; command -v cmake && cmake --version 2>&1 | head -1 || echo "cmake: not found"
  sec "c++"; (command -v g++ && g++ --version 2>&1 | head -1) || echo "g++: not found"
  sec "compute-sanitizer"; command -v compute-sanitizer && compute-sanitizer --version 2>&1 | tail -2 || echo "compute-sanitizer: not found"
  sec "ncu"; command -v ncu && ncu --version 2>&1 | tail -1 || echo "ncu: not found"
  sec "node"; command -v node && node --version || echo "node: not on the PATH (.gpu/node.xz: $( [[ -f .gpu/node.xz ]] && echo present || echo absent))"
  sec "python, torch"
  if command -v python3 >/dev/null; then
    command -v python3; python3 --version 2>&1
    timeout 120 python3 - <<'PY' 2>&1
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
    print("cuda available:", torch.cuda.is_available())
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print("device 0:", p.name, f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs",
              round(p.total_memory / 2**30, 1), "GiB", "L2", getattr(p, "L2_cache_size", "?"))
    try:
        import torch.sparse
        print("to_sparse_semi_structured:", hasattr(torch.sparse, "to_sparse_semi_structured"))
    except Exception as e:
        print("torch.sparse:", e)
    print("_scaled_mm:", hasattr(torch, "_scaled_mm"), " _weight_int4pack_mm:", hasattr(torch, "_weight_int4pack_mm"))
except Exception as e:
    print("torch: cannot import:", e)
PY
  else
    echo "python3: not found"
  fi
  sec ".gpu"; ls -la .gpu 2>&1; cat .gpu/MANIFEST.txt 2>/dev/null

  # Is there a GPU at all? (the one thing this step can fail on)
  local gpus
  gpus=$(timeout 30 nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  if [[ "${gpus:-0}" -ge 1 ]]; then
    note "$(timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader 2>/dev/null | head -1); $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo 'no nvcc'); $(python3 -c 'import torch; print("torch", torch.__version__)' 2>/dev/null || echo 'no torch')"
    return 0
  fi
  if ! command -v nvidia-smi >/dev/null; then
    note "no GPU/driver present: nvidia-smi is not installed$( ls /dev/nvidia0 >/dev/null 2>&1 && echo ' (but /dev/nvidia0 exists)' || echo ' and there is no /dev/nvidia0')"
  else
    note "no GPU/driver present: nvidia-smi lists no GPU ($(timeout 30 nvidia-smi -L 2>&1 | head -1))"
  fi
  return 3
}
export -f step_env

# ---- 2. build ---------------------------------------------------------------------------------------
# Finds or unpacks Node (-> $WORK/node), unpacks node_modules, builds, picks the addon (-> $WORK/addon).
unxz_to() { # unxz_to FILE.xz DEST
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
export -f unxz_to

step_build() {
  local node=""
  if command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)'; then
    node=$(command -v node)
  elif [[ -f .gpu/node.xz ]]; then
    echo "unpacking .gpu/node.xz to /tmp/node"
    unxz_to .gpu/node.xz /tmp/node.part && chmod +x /tmp/node.part && mv /tmp/node.part /tmp/node && node=/tmp/node
  fi
  if [[ -z "$node" ]] || ! "$node" --version; then
    note "no Node.js: none on the PATH and no usable .gpu/node.xz (make it with bash scripts/gpu-check/pack.sh)"
    return 1
  fi
  # A `node` on the PATH as well: CMakeLists.txt asks `node` for node-addon-api's include dir.
  mkdir -p "$WORK/bin" && ln -sf "$node" "$WORK/bin/node"
  export PATH="$WORK/bin:$PATH"
  echo "$node" > "$WORK/node"
  echo "node: $node $("$node" --version)"

  if [[ ! -d node_modules/cmake-js || ! -d node_modules/node-addon-api ]]; then
    if [[ -f .gpu/node_modules.tar.xz ]]; then
      echo "unpacking .gpu/node_modules.tar.xz"
      if command -v xz >/dev/null; then tar -xJf .gpu/node_modules.tar.xz; else
        python3 -c 'import tarfile,sys; tarfile.open(sys.argv[1]).extractall(".")' .gpu/node_modules.tar.xz; fi
    else
      echo "no node_modules and no .gpu/node_modules.tar.xz: the build cannot find cmake-js"
    fi
  fi

  # check_addon FILE: loads it, prints probe() and selfTest(); exit 0 when selfTest ran and passed.
  check_addon() {
    timeout 120 "$node" -e '
      const a = require(process.argv[1]);
      const p = a.probe(), s = a.selfTest(0);
      console.log(JSON.stringify({ probe: p, selfTest: s, compiledTargets: a.compiledTargets(), exports: Object.keys(a) }, null, 1));
      const d = p.devices && p.devices[0];
      console.log(`addon: ${d ? d.name + " (sm_" + d.sm + ")" : "no device (" + (p.errorName || p.error) + ")"}, ` +
        `SASS ${a.compiledTargets().join(" ")}; selfTest ${s.ran ? (s.passed ? "passed" : "FAILED") : "did not run (" + (s.errorName || "") + ")"}`);
      process.exit(s.ran && s.passed ? 0 : 1);' "$1" 2>&1 | tee "$WORK/check.out"
    local rc=${PIPESTATUS[0]}
    grep '^addon:' "$WORK/check.out" | tail -1 > "$WORK/check.last"
    return $rc
  }
  # The addons built here travel compressed (pack.sh).
  local f
  for f in .gpu/prebuilt/*.node.xz; do
    [[ -f "$f" ]] && unxz_to "$f" "${f%.xz}" && echo "unpacked $f"
  done
  if [[ ! -f build/Release/compressed_gemm_cpu.node && -f .gpu/prebuilt/compressed_gemm_cpu.node ]]; then
    mkdir -p build/Release && cp .gpu/prebuilt/compressed_gemm_cpu.node build/Release/ && echo "the CPU addon built here -> build/Release"
  fi
  local pre="$ROOT/.gpu/prebuilt/compressed_gemm_cuda.node" dest="$ROOT/build-cuda/Release/compressed_gemm_cuda.node"
  if [[ "${CG_GPU_CHECK_BUILD:-}" != 1 && -f "$pre" ]]; then
    echo; echo "## the addon built here (.gpu/prebuilt): probe() and selfTest()"
    if check_addon "$pre"; then
      mkdir -p "$(dirname "$dest")" && cp "$pre" "$dest" && echo "$dest" > "$WORK/addon" && touch "$WORK/prebuilt-used"
      note "the addon built here (.gpu/prebuilt, not rebuilt there; CG_GPU_CHECK_BUILD=1 rebuilds): $(cat "$WORK/check.last")"
      return 0
    fi
    echo "the prebuilt addon did not pass there: building"
  fi

  local archs=${CG_GPU_CHECK_ARCHS:-90a-real} built=0 why=""
  if COMPRESSED_GEMM_REQUIRE_CUDA=1 COMPRESSED_GEMM_CUDA_ARCHS="$archs" "$node" scripts/build-cuda.js; then
    if [[ -f "$dest" ]]; then built=1; else why="build-cuda.js succeeded but the addon is missing"; fi
  else
    why="build-cuda.js failed (see build.log)"
  fi
  local addon=""
  if ((built)); then
    addon="$dest"
  elif [[ -f "$pre" ]]; then
    addon="$pre"
  fi
  [[ -n "$addon" ]] && echo "$addon" > "$WORK/addon"

  echo; echo "## the addon: probe() and selfTest()"
  local rc=0
  if [[ -n "$addon" ]]; then
    check_addon "$addon"
    rc=$?
  fi
  local last
  last=$(cat "$WORK/check.last" 2>/dev/null)
  if ((built)); then
    note "built there (SASS $archs) with $("$node" --version); $last"
    return $rc
  fi
  if [[ -n "$addon" ]]; then
    note "$why; using the addon built here (.gpu/prebuilt); $last"
  else
    note "$why; and no .gpu/prebuilt addon: steps 3-7 cannot run"
  fi
  return 1
}
export -f step_build

# ---- 3. probes --------------------------------------------------------------------------------------
need_addon() {
  NODE=$(cat "$WORK/node" 2>/dev/null)
  ADDON=$(cat "$WORK/addon" 2>/dev/null)
  if [[ -z "$NODE" || -z "$ADDON" ]]; then
    note "no Node or no addon (step 2)"
    return 1
  fi
  export NODE ADDON
}
export -f need_addon

step_probes() {
  need_addon || return 1
  "$NODE" scripts/gpu-check/run-probes.js --addon "$ADDON" --out "$OUT" | tee "$WORK/probes.out"
  local rc=${PIPESTATUS[0]}
  local fails
  fails=$(grep '^FAIL' "$WORK/probes.out" | cut -c1-80 | head -3 | tr '\n' ';')
  note "$(grep '^# [0-9]* passed' "$WORK/probes.out" | tail -1 | sed 's/^# //')${fails:+; first failures: $fails}"
  return $rc
}
export -f step_probes

# ---- 4. jest on the cuda backend -------------------------------------------------------------------
step_jest() {
  need_addon || return 1
  if [[ ! -f node_modules/jest/bin/jest.js || ! -d node_modules/ts-jest || ! -d node_modules/typescript ]]; then
    note "no jest, ts-jest or typescript in node_modules (bash scripts/gpu-check/pack.sh packs them)"
    return 1
  fi
  if [[ ! -f build/Release/compressed_gemm_cpu.node ]]; then
    note "no CPU addon in build/Release (pack.sh packs the one built here)"
    return 1
  fi
  # The seed each suite used is printed on failure (CG_TEST_SEED reproduces it).
  COMPRESSED_GEMM_BACKEND=cuda "$NODE" node_modules/jest/bin/jest.js -c jest.cuda.config.js --ci \
    --maxWorkers="$(($(nproc) > 8 ? 8 : $(nproc)))" 2>&1 | tee "$WORK/jest.out"
  local rc=${PIPESTATUS[0]}
  local fails
  fails=$(grep -E '^\s+● ' "$WORK/jest.out" | sed 's/^ *● //' | cut -c1-100 | head -3 | tr '\n' ';')
  note "$(grep -E '^Tests:' "$WORK/jest.out" | tail -1)${fails:+; first failures: $fails}"
  return $rc
}
export -f step_jest

# ---- 5. plain-JS checks -----------------------------------------------------------------------------
step_js_checks() {
  need_addon || return 1
  local rc=0 notes=""
  echo "## the formulas' two sources (ISA, CuTe) agree on every lane (scripts/gpu-check/js-checks.js)"
  if "$NODE" scripts/gpu-check/js-checks.js; then notes="formulas: ISA = CuTe"; else rc=1; notes="formulas: DISAGREE"; fi
  local pre="$ROOT/.gpu/prebuilt/compressed_gemm_cuda.node"
  if [[ -f "$pre" && "$ADDON" != "$pre" && ! -f "$WORK/prebuilt-used" && -f "$OUT/probes/dumps.json" ]]; then
    echo; echo "## the addon built here (.gpu/prebuilt) against the fresh build's dumps"
    "$NODE" scripts/gpu-check/run-probes.js --addon "$pre" --replay "$OUT/probes/dumps.json" | tee "$WORK/replay.out"
    if [[ ${PIPESTATUS[0]} -eq 0 ]]; then
      notes="$notes; the addon built here loads there and equals the fresh build's dumps"
    else
      notes="$notes; the addon built here (informational): $(grep -E '^(# [0-9]+ passed|FAIL)' "$WORK/replay.out" | head -2 | cut -c1-120 | tr '\n' ' ')"
    fi
  fi
  note "$notes"
  return $rc
}
export -f step_js_checks

# ---- 7. compute-sanitizer ---------------------------------------------------------------------------
step_sanitizer() {
  if ! command -v compute-sanitizer >/dev/null; then
    note "compute-sanitizer not found"
    return 77
  fi
  need_addon || return 1
  local rc=0 notes="" r
  sanitize() { # sanitize TOOL ONLY-REGEX
    echo; echo "## compute-sanitizer --tool $1, probes matching /$2/"
    timeout 200 compute-sanitizer --tool "$1" --error-exitcode 9 --print-limit 30 \
      "$NODE" scripts/gpu-check/run-probes.js --addon "$ADDON" --no-isolated --only "$2" 2>&1 | tee "$WORK/san.txt"
    r=${PIPESTATUS[0]}
    local summary
    summary=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$WORK/san.txt" | tail -1)
    [[ -n "$summary" ]] || summary=$(grep -iE 'not supported|error' "$WORK/san.txt" | head -1 | cut -c1-160)
    notes="$notes$1: exit $r${summary:+ ($summary)}; "
    # Judged by the sanitizer's own report: exit 9 is what it found; exit 1 with a clean summary
    # is a probe's mismatch, which step 3 reports.
    if ! ((r == 0)) && ! ((r == 1)) || ! grep -qE 'SUMMARY: 0 (errors|hazards)' "$WORK/san.txt"; then rc=1; fi
  }
  sanitize memcheck '.'
  sanitize racecheck '^mma_(f16|bf16)_tile$'
  note "$notes"
  return $rc
}
export -f step_sanitizer

# ---- 6. timings -------------------------------------------------------------------------------------
step_timings() {
  local node ours="$WORK/ours.json"
  node=$(cat "$WORK/node" 2>/dev/null)
  local addon
  addon=$(cat "$WORK/addon" 2>/dev/null)
  # Our kernels get half of the step's time (bench-ours.js stops starting cases at its deadline
  # and says how many it skipped), so that cuBLAS's baseline still runs beside them.
  local deadline=()
  if [[ -n "${STEP_DEADLINE:-}" ]]; then
    local now
    now=$(date +%s)
    deadline=(--deadline $((now + (STEP_DEADLINE - now) / 2)))
  fi
  if [[ -n "$node" ]]; then
    "$node" scripts/gpu-check/bench-ours.js --addon "${addon:-none}" "${deadline[@]}" > "$ours" 2>> "$WORK/ours.err" || true
  fi
  [[ -s "$ours" ]] || echo '{"status": "not built yet", "reason": "bench-ours.js could not run (no Node)"}' > "$ours"
  local quick=()
  [[ "${CG_GPU_CHECK_QUICK:-}" == 1 ]] && quick=(--quick)
  PYTHONUNBUFFERED=1 python3 scripts/gpu-check/torch_baseline.py --json "$OUT/timings.json" --ours "$ours" "${quick[@]}"
  local rc=$?
  local got
  got=$(grep -E '^square 8192 (fp16|bf16) M=8192' "$OUT/timings.txt" 2>/dev/null | tr '\n' ';')
  ((rc == 0)) || got="$got python exit $rc: $(grep -v '^====' "$OUT/timings.txt" | tail -1 | cut -c1-160);"
  note "$got ours: $(grep -o '"status": "[^"]*"' "$ours" | head -1)"
  return $rc
}
export -f step_timings

# ---- the run ----------------------------------------------------------------------------------------
run_step 1 env 90 "$OUT/env.txt" step_env
if ! grep -q '^step 1 env: PASS' "$SUMMARY" && grep -q '^step 1 env:' "$SUMMARY"; then
  if [[ "${CG_GPU_CHECK_ALLOW_NO_GPU:-}" != 1 ]]; then
    msg=$(grep '^step 1 env:' "$SUMMARY" | sed 's/.* - //')
    echo "result: STOPPED: ${msg:-no GPU/driver present} (env.txt has the details; CG_GPU_CHECK_ALLOW_NO_GPU=1 goes on anyway)" >> "$SUMMARY"
    echo "gpu-check: ${msg:-no GPU/driver present}; stopped after step 1 (summary: $SUMMARY)" >&2
    rm -rf "$WORK"
    exit 2
  fi
  echo "(CG_GPU_CHECK_ALLOW_NO_GPU=1: going on without a GPU)" >> "$SUMMARY"
fi
run_step 2 build 360 "$OUT/build.log" step_build
# The timings run before the jest suite: device time is short, and a machine is lent rarely; the
# figures are what the next lease cannot get back, while jest's cases also run on cuda-sim in CI.
run_step 3 probes 90 "$OUT/probes.log" step_probes
run_step 6 timings 300 "$OUT/timings.txt" step_timings
run_step 4 jest 180 "$OUT/probes.log" step_jest
run_step 5 js-checks 45 "$OUT/probes.log" step_js_checks
run_step 7 sanitizer 240 "$OUT/sanitizer.log" step_sanitizer

if [[ -f "$OUT/timings.json" ]]; then
  python3 -c 'import json,sys; t=json.load(open(sys.argv[1])).get("table"); print("\ntimings (timings.json):\n" + t) if t else None' "$OUT/timings.json" >> "$SUMMARY" 2>/dev/null
fi
echo "result: $( ((FAILED)) && echo 'SOME STEPS FAILED' || echo 'all steps passed or were skipped') in $(( $(date +%s) - START )) s" >> "$SUMMARY"
cat "$SUMMARY"
rm -rf "$WORK"
exit $((FAILED ? 1 : 0))
