#!/usr/bin/env bash
# Prepares .gpu/ (ignored by git) here, for scripts/gpu-check.sh on a GPU machine that has no
# Node.js, no node_modules and no network. Carry `.gpu` (one path, well under the 64 MiB a device
# call may carry) and run `bash scripts/gpu-check.sh "$OUT"` there. What it holds:
#   .gpu/node.xz               this machine's Node binary:  xz -T2 -9 -c "$(command -v node)" > .gpu/node.xz
#                              (remade only when missing or older than the binary; about 23 MB for Node 20)
#   .gpu/node_modules.tar.xz   the packages the CUDA build needs, with their dependencies:
#                              node-addon-api (napi.h), node-api-headers (node_api.h), cmake-js;
#                              and those the jest run on the cuda backend needs (gpu-check.sh's
#                              step 4): jest, ts-jest, typescript, with their dependencies, peer
#                              and optional ones included (about 7 MB compressed)
#   .gpu/prebuilt/compressed_gemm_cuda.node.xz
#                              the CUDA addon built here, if there is one (build it with
#                              COMPRESSED_GEMM_CUDA_ARCHS=90a-real for the H200: 24 MB, 0.7 MB
#                              compressed): gpu-check.sh uses it when it passes its selfTest there
#   .gpu/prebuilt/compressed_gemm_cpu.node.xz
#                              the CPU addon built here (build/Release), for the jest run there
#                              (gpu-check.sh puts it in build/Release when that has none)
#   .gpu/MANIFEST.txt          what was packed, from which versions
#
#   bash scripts/gpu-check/pack.sh [--no-prebuilt]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
mkdir -p .gpu

NODE=$(command -v node) || { echo "pack.sh: node is not on the PATH" >&2; exit 1; }
if [[ ! -s .gpu/node.xz || "$NODE" -nt .gpu/node.xz ]]; then
  echo "pack.sh: compressing $NODE (about a minute and a half)" >&2
  xz -T2 -9 -c "$NODE" > .gpu/node.xz.tmp
  mv .gpu/node.xz.tmp .gpu/node.xz
fi

# The dependency closure of the packages the build needs (production dependencies only).
PKGS=$(node -e '
  const path = require("path"), fs = require("fs");
  const root = process.argv[1];
  const seen = new Map();
  function visit(name, from, optional = false) {
    // node_modules/NAME in `from` or above (not require.resolve: an "exports" map may hide package.json)
    let dir = null;
    for (let d = from; ; d = path.dirname(d)) {
      const c = path.join(d, "node_modules", name);
      if (fs.existsSync(path.join(c, "package.json"))) { dir = c; break; }
      if (d === root || path.dirname(d) === d) break;
    }
    if (!dir) {
      if (optional) return; // an optional or peer dependency that npm did not install here
      process.stderr.write(`pack.sh: ${name} is not installed (npm install first)\n`); process.exit(1);
    }
    const pj = path.join(dir, "package.json");
    if (seen.has(dir)) return;
    seen.set(dir, true);
    const p = JSON.parse(fs.readFileSync(pj, "utf8"));
    const deps = { ...p.dependencies, ...p.optionalDependencies, ...p.peerDependencies };
    for (const d of Object.keys(deps)) visit(d, dir, !(p.dependencies && d in p.dependencies));
  }
  for (const n of ["node-addon-api", "node-api-headers", "cmake-js", "jest", "ts-jest", "typescript"]) visit(n, root);
  console.log([...seen.keys()].map((d) => path.relative(root, d)).join("\n"));
' "$ROOT")
for p in $PKGS; do
  case "$p" in node_modules/*) ;; *) echo "pack.sh: $p is outside node_modules" >&2; exit 1 ;; esac
done
# shellcheck disable=SC2086
tar -cf - $PKGS | xz -T2 -6 > .gpu/node_modules.tar.xz.tmp
mv .gpu/node_modules.tar.xz.tmp .gpu/node_modules.tar.xz

rm -rf .gpu/prebuilt
mkdir -p .gpu/prebuilt
if [[ "${1:-}" != "--no-prebuilt" && -f build-cuda/Release/compressed_gemm_cuda.node ]]; then
  xz -T2 -6 -c build-cuda/Release/compressed_gemm_cuda.node > .gpu/prebuilt/compressed_gemm_cuda.node.xz
fi
if [[ -f build/Release/compressed_gemm_cpu.node ]]; then
  xz -T2 -6 -c build/Release/compressed_gemm_cpu.node > .gpu/prebuilt/compressed_gemm_cpu.node.xz
fi

{
  echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm)"
  echo "node: $("$NODE" --version) ($NODE)"
  echo "node_modules: $(for p in $PKGS; do printf '%s@%s ' "${p#node_modules/}" "$(node -p "require('./$p/package.json').version")"; done)"
  if [[ -f .gpu/prebuilt/compressed_gemm_cuda.node.xz ]]; then
    echo "prebuilt: build-cuda/Release/compressed_gemm_cuda.node of $(date -u -r build-cuda/Release/compressed_gemm_cuda.node +%Y-%m-%dT%H:%M:%SZ)," \
      "SASS $(node -p "require('./build-cuda/Release/compressed_gemm_cuda.node').compiledTargets().join(' ')" 2>/dev/null || echo '?')," \
      "tree at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' + local changes')"
  else
    echo "prebuilt: none"
  fi
  if [[ -f .gpu/prebuilt/compressed_gemm_cpu.node.xz ]]; then
    echo "cpu addon: build/Release/compressed_gemm_cpu.node of $(date -u -r build/Release/compressed_gemm_cpu.node +%Y-%m-%dT%H:%M:%SZ)"
  fi
} > .gpu/MANIFEST.txt

du -sh .gpu >&2
ls -la .gpu >&2
cat .gpu/MANIFEST.txt >&2
