#!/usr/bin/env bash
# When gpu-check.sh finds a kernel that faults on the GPU: which one, where, and its SASS.
#   bash scripts/gpu-check/diagnose.sh "$OUT" [FILE:TEST-PATTERN ...]   (on the GPU machine, .gpu carried)
# FILE:TEST-PATTERN: the jest tests to run under the sanitizer (jest.cuda.config.js, -t PATTERN);
# default: the LoRA and lowRankUpdate suites' main tests, which the 2026-12-04 INT4 fault failed.
# 1. gpu-check.sh's steps 1 and 2 (Node, node_modules, the addon)           -> setup.txt
# 2. scripts/gpu-check/isolate.js: each kernel case in a process of its own  -> isolate.txt
# 3. compute-sanitizer memcheck over the first failing cases (the kernel, the PC, the error)
#    and over the jest tests given (--runInBand)                                  -> sanitizer.txt
# 4. the SASS of the kernels the sanitizer names                            -> sass.txt
set -u
OUT=${1:?usage: diagnose.sh OUT_DIR [FILE:TEST-PATTERN ...]}
shift
JEST_TESTS=("$@")
((${#JEST_TESTS[@]})) || JEST_TESTS=("test/ops/lora.test.ts:sync: every weight format" "test/ops/lowrank-update.test.ts:every block size"
  "test/ops/multi-lora.test.ts:sync: every weight format")
mkdir -p "$OUT"
cd "$(dirname "$0")/../.." || exit 2
S=$(mktemp -d)
CG_GPU_CHECK_STEPS="1 2" CG_GPU_CHECK_BUDGET_S=150 bash scripts/gpu-check.sh "$S" > /dev/null 2>&1
cat "$S/summary.txt" > "$OUT/setup.txt"; tail -30 "$S/build.log" >> "$OUT/setup.txt" 2>/dev/null
NODE=$(command -v node || echo /tmp/node)
ADDON=$PWD/build-cuda/Release/compressed_gemm_cuda.node
export PATH="$(dirname "$NODE"):$PATH:/usr/local/cuda/bin"
echo "node $NODE, addon $ADDON" >> "$OUT/setup.txt"

timeout 150 "$NODE" scripts/gpu-check/isolate.js --addon "$ADDON" > "$OUT/isolate.txt" 2>&1
echo "isolate exit $?" >> "$OUT/isolate.txt"

SAN=$OUT/sanitizer.txt
: > "$SAN"
if command -v compute-sanitizer >/dev/null; then
  for i in $(grep -E '^ *[0-9]+ .*: (ERR|Error|no output)' "$OUT/isolate.txt" | awk '{print $1}' | head -4); do
    echo "==== case $i: $(grep -E "^ *$i " "$OUT/isolate.txt" | cut -c1-200)" >> "$SAN"
    timeout 60 compute-sanitizer --tool memcheck --print-limit 6 --show-backtrace device "$NODE" scripts/gpu-check/isolate.js --addon "$ADDON" --child "$i" >> "$SAN" 2>&1
  done
  for t in "${JEST_TESTS[@]}"; do
    echo "==== jest ${t}" >> "$SAN"
    COMPRESSED_GEMM_BACKEND=cuda timeout 90 compute-sanitizer --tool memcheck --print-limit 6 --show-backtrace device \
      "$NODE" node_modules/jest/bin/jest.js -c jest.cuda.config.js --ci --runInBand "${t%%:*}" -t "${t#*:}" 2>&1 |
      grep -vE '^\s+at |^\s*$' | head -120 >> "$SAN"
  done
else
  echo "no compute-sanitizer" >> "$SAN"
fi

# The SASS of each kernel the sanitizer names (by its unqualified name), at most 60000 lines.
names=$(grep -E '^=========' "$SAN" | grep -oE '[A-Za-z0-9]+_[A-Za-z_0-9]*kernel[A-Za-z_0-9]*' | sort -u | head -6)
echo "kernels named: $names" > "$OUT/sass.txt"
if [[ -n "$names" ]] && command -v cuobjdump >/dev/null; then
  pat=$(echo $names | tr ' ' '|')
  cuobjdump -sass "$ADDON" 2>&1 | awk -v pat="$pat" '/Function :/ { keep = ($0 ~ pat) } keep' | head -60000 >> "$OUT/sass.txt"
fi
ls -la "$OUT"
