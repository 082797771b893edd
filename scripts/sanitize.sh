#!/usr/bin/env bash
# Sanitizer pass: the jest suite against the CPU addon built with AddressSanitizer and
# UndefinedBehaviorSanitizer. .ci/run calls it just before `npm test`; locally (after `npm ci`):
#
#   bash scripts/sanitize.sh                      # ~3 min on 2 cores; exit 0 = no finding
#   bash scripts/sanitize.sh test/int4.test.ts    # extra arguments go to jest (not -t:
#   SANITIZE_TEST_NAME='int8' bash scripts/...    #   the skip list below is a -t already; use this)
#   SANITIZE_DIR=/tmp/cg-san bash scripts/sanitize.sh  # a fixed work dir: rebuilds incrementally
#
# What it does:
#  1. Stages a copy of the package's sources (git's tracked + untracked-not-ignored files, as they
#     are at run time: binding.gyp decides what gets compiled, no source path is named here) in a
#     work dir, with node_modules linked, dist/ copied and build-cuda/ linked. build/ of the real
#     checkout is never touched.
#  2. Builds the CPU addon there with node-gyp (binding.gyp as is), the sanitizer flags coming in
#     through CFLAGS/CXXFLAGS/LDFLAGS (which the gyp Makefiles put after binding.gyp's cflags, so
#     -O1 wins over its -O3), and checks in the V=1 log that every compile and the link got them.
#  3. Runs jest from the staged copy, whose build/Release is the sanitized addon: the tests, the
#     child processes of test/helpers/child.ts and test/native-checks.test.ts (which loads
#     ROOT/build/Release directly) all load it from there. COMPRESSED_GEMM_ADDON_DIR is not used:
#     the children drop every COMPRESSED_GEMM_* variable, and it also heads the CUDA addon's
#     candidates, which changes the "Tried:" list a backend test compares with a child's.
#     Node is not instrumented, so the gcc sanitizer runtimes are LD_PRELOADed (children inherit
#     it). COMPRESSED_GEMM_BACKEND=cpu: the CUDA addon is not sanitized.
#  4. Fails (exit != 0) on a jest failure and on any sanitizer report, wherever it happened: the
#     jest process's own output is scanned, ASan writes its reports to files, and a hook
#     preloaded into every Node process (NODE_OPTIONS) saves any child's stderr that holds a
#     report, so a child whose exit status a test ignores cannot hide one. Reports are printed
#     at the end; on failure the work dir (build.log, jest.log, reports/) is kept.
#
# Flags: -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
#        -fno-omit-frame-pointer -g -O1   (GCC's "undefined" does not include
#        float-cast-overflow, e.g. NaN -> int8_t, so it is named explicitly.)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
START=$SECONDS
log() { printf 'sanitize: %s\n' "$*" >&2; }

# Tests skipped under the sanitizer, by full name (describe + test), each with the reason. None
# today. Known UB not reached by the suite (so not skipped): the AVX-512 VNNI int8 activation
# quantizer's scalar tail (quantize_row) casts NaN to int8_t; the suite's NaN test for 'int8'
# (test.failing in linear.quant.test.ts) uses K = 64, i.e. only the vector path. If a test ever
# reaches that cast before the NaN semantics are defined, name it here with that reason.
#
# Skipped here: test/package/install.test.ts ("the packed package installs without a compiler").
# It packs the tarball and installs it with npm into an empty project: packaging, with no kernel
# call the other suites do not make; `npm test` runs it. In the staged copy every source is
# fresh, so the CUDA addon it would reuse looks older than its sources.
SKIP_TESTS=('the packed package installs without a compiler')

SAN="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all"
FLAGS="$SAN -fno-omit-frame-pointer -g -O1"
CXX=${CXX:-g++}
CC=${CC:-gcc}
export CC CXX

# ---- 1. stage ---------------------------------------------------------------------------------
if [[ -n "${SANITIZE_DIR:-}" ]]; then
  WORK=$SANITIZE_DIR
  KEEP=1
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/cg-sanitize.XXXXXX")
  KEEP=0
fi
STAGE=$WORK/pkg
LOGS=$WORK/reports
trap 'rc=$?; if [[ $rc -ne 0 ]]; then log "exit $rc; work dir kept: $WORK"; fi' EXIT
mkdir -p "$STAGE" "$LOGS"
rm -f "$LOGS"/*
# Keep the staged build/ (incremental rebuilds with SANITIZE_DIR); replace everything else.
find "$STAGE" -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf {} +
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Files git knows or would add, that exist now (another change may have deleted some).
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -f "$f" || -L "$f" ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -xf - -C "$STAGE"
else
  (cd "$ROOT" && tar --exclude=./node_modules --exclude=./build --exclude=./build-cuda \
    --exclude=./dist --exclude=./.git -cf - .) | tar -xf - -C "$STAGE"
fi
[[ -d "$ROOT/node_modules" ]] || { log "no node_modules: run npm ci first"; exit 2; }
rm -rf "$STAGE/node_modules" "$STAGE/dist" "$STAGE/build-cuda"
ln -s "$ROOT/node_modules" "$STAGE/node_modules"
# dist/ is copied, not linked: dist/index.js finds its addon relative to its real path.
[[ -d "$ROOT/dist" ]] && cp -R "$ROOT/dist" "$STAGE/dist"
# The CUDA addon as built (the CUDA tests check it exists); it is not sanitized.
[[ -d "$ROOT/build-cuda" ]] && ln -s "$ROOT/build-cuda" "$STAGE/build-cuda"
log "staged $(cd "$STAGE" && find . -path ./build -prune -o -type f -print | wc -l) files in $STAGE"

# ---- 2. build ---------------------------------------------------------------------------------
cd "$STAGE"
GYP=${npm_config_node_gyp:-$STAGE/node_modules/node-gyp/bin/node-gyp.js}
NODEDIR=()
PREFIX=$(cd "$(dirname "$(command -v node)")/.." && pwd)
if [[ -n "${npm_config_nodedir:-}" ]]; then NODEDIR=("--nodedir=$npm_config_nodedir")
elif [[ -f "$PREFIX/include/node/node_api.h" ]]; then NODEDIR=("--nodedir=$PREFIX"); fi
JOBS=$(nproc 2>/dev/null || echo 2)
export CFLAGS="$FLAGS" CXXFLAGS="$FLAGS" LDFLAGS="$SAN" V=1
node "$GYP" configure ${NODEDIR[@]+"${NODEDIR[@]}"} >"$WORK/configure.log" 2>&1 || { cat "$WORK/configure.log"; exit 1; }
node "$GYP" build "--jobs=$JOBS" ${NODEDIR[@]+"${NODEDIR[@]}"} >"$WORK/build.log" 2>&1 || { tail -n 60 "$WORK/build.log"; exit 1; }
unset CFLAGS CXXFLAGS LDFLAGS V
ADDON_DIR=$STAGE/build/Release
[[ -f "$ADDON_DIR/compressed_gemm_cpu.node" ]] || { log "no addon in $ADDON_DIR"; exit 1; }

# Every compile and link that ran must carry the flags, and -O1 must be the last -O of each
# compile (an incremental build may run none).
CMD_RE='^ *[^ ]*(g\+\+|gcc|c\+\+|cc|clang\+\+|clang) '
NCOMP=0
while IFS= read -r line; do
  if [[ $line != *"$SAN"* ]]; then log "a command without the sanitizer flags: $line"; exit 1; fi
  if [[ $line =~ \ -c($|\ ) ]]; then
    NCOMP=$((NCOMP + 1))
    lastO=$(grep -oE ' -O[0-9sgz]?( |$)' <<<"$line" | tail -n 1 | tr -d ' ')
    [[ $lastO == -O1 ]] || { log "a compile whose last -O is $lastO, not -O1: $line"; exit 1; }
  fi
done < <(grep -E "$CMD_RE.*( -c$| -c | -shared )" "$WORK/build.log" || true)
if [[ $KEEP == 0 && $NCOMP == 0 ]]; then log "no compile command found in $WORK/build.log"; exit 1; fi
log "built $ADDON_DIR ($NCOMP compiles, all with: $FLAGS) in $((SECONDS - START)) s"
readelf -d "$ADDON_DIR/compressed_gemm_cpu.node" >"$WORK/dynamic.txt"
grep -q 'libasan' "$WORK/dynamic.txt" || { log "the addon is not linked against libasan"; exit 1; }

# ---- 3. test ----------------------------------------------------------------------------------
runtime() { readlink -f "$("$CXX" -print-file-name="$1")"; }
ASAN_SO=$(runtime libasan.so); UBSAN_SO=$(runtime libubsan.so)
[[ -f "$ASAN_SO" && -f "$UBSAN_SO" ]] || { log "sanitizer runtimes not found ($ASAN_SO, $UBSAN_SO)"; exit 1; }

# detect_leaks=0: V8 keeps its heap to the end by design. protect_shadow_gap=0: lets the CUDA
# runtime map its memory where CUDA exists (the CUDA tests still probe the device). exitcode=86:
# a process that reported dies with 86. ASan reports go to $LOGS/report.<pid>. (With gcc 12's
# separate libasan/libubsan, libubsan's start-up sets libasan's report path from UBSAN_OPTIONS,
# hence the same log_path in both; UBSan's own reports go to stderr whatever log_path says.)
# UBSan reports are found on stderr: jest's own output (in-band: the test process is jest's) is
# scanned, and so is every child's, through a hook preloaded into each Node process that wraps
# child_process.spawnSync (test/helpers/child.ts captures the children's stderr and shows it
# only when a test fails).
export ASAN_OPTIONS="detect_leaks=0:protect_shadow_gap=0:halt_on_error=1:exitcode=86:log_path=$LOGS/report"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86:log_path=$LOGS/report"
MARKERS='runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer)'
cat >"$WORK/hook.js" <<EOF
// Preloaded into every Node process of the sanitizer pass (scripts/sanitize.sh): a child run
// through child_process.spawnSync whose stderr holds a sanitizer report is written to the pass's
// report dir.
'use strict';
const cp = require('child_process');
const fs = require('fs');
const path = require('path');
const dir = $(node -p 'JSON.stringify(process.argv[1])' "$LOGS");
const re = new RegExp($(node -p 'JSON.stringify(process.argv[1])' "$MARKERS"));
const spawnSync = cp.spawnSync;
cp.spawnSync = function (...args) {
  const r = spawnSync.apply(this, args);
  const e = r && r.stderr;
  const text = e == null ? '' : Buffer.isBuffer(e) ? e.toString('utf8') : String(e);
  if (re.test(text)) {
    fs.appendFileSync(path.join(dir, 'child-stderr.' + process.pid + '.' + r.pid),
      'spawnSync of ' + JSON.stringify(String(args[0])) + ' (status ' + r.status + ', signal ' + r.signal + '), stderr:\n' + text + '\n');
  }
  return r;
};
EOF
export COMPRESSED_GEMM_BACKEND=cpu
unset COMPRESSED_GEMM_ADDON_DIR

SKIP_RE=""
for t in ${SKIP_TESTS[@]+"${SKIP_TESTS[@]}"}; do
  # Regex-escape the name (jest --testNamePattern).
  e=$(printf '%s' "$t" | sed -e 's/[][\\.^$*+?(){}|\/]/\\&/g')
  SKIP_RE+="${SKIP_RE:+|}$e"
done
JEST_ARGS=(--ci --runInBand)
# Run every test whose full name contains none of SKIP_TESTS (and matches SANITIZE_TEST_NAME).
NAME_RE="^${SKIP_RE:+(?!.*(${SKIP_RE}))}"
[[ -n "${SANITIZE_TEST_NAME:-}" ]] && NAME_RE+="(?=.*(${SANITIZE_TEST_NAME}))"
JEST_ARGS+=(--testNamePattern "$NAME_RE")

TEST_START=$SECONDS
set +e
LD_PRELOAD="$ASAN_SO $UBSAN_SO${LD_PRELOAD:+ $LD_PRELOAD}" \
  NODE_OPTIONS="--require \"$WORK/hook.js\"${NODE_OPTIONS:+ $NODE_OPTIONS}" \
  node "$STAGE/node_modules/jest/bin/jest.js" "${JEST_ARGS[@]}" "$@" 2>&1 | tee "$WORK/jest.log"
JEST_RC=${PIPESTATUS[0]}
set -e
log "jest exited $JEST_RC after $((SECONDS - TEST_START)) s"
# Reports printed by the jest process itself, or by children whose output reached ours.
if grep -qE "$MARKERS" "$WORK/jest.log"; then
  grep -nE -B2 -A30 "$MARKERS" "$WORK/jest.log" >"$LOGS/jest-output" || true
fi

# ---- 4. verdict -------------------------------------------------------------------------------
REPORTS=$(find "$LOGS" -type f -size +0c | sort)
if [[ -n "$REPORTS" ]]; then
  for f in $REPORTS; do log "==== sanitizer report $f"; cat "$f" >&2; done
  log "FAILED: $(echo "$REPORTS" | wc -l) sanitizer report(s)"
  exit 1
fi
if [[ $JEST_RC -ne 0 ]]; then
  log "FAILED: jest exited $JEST_RC"
  exit "$JEST_RC"
fi
log "OK: no sanitizer report, jest passed; $((SECONDS - START)) s in all"
[[ $KEEP == 1 ]] || rm -rf "$WORK"
