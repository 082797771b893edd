// A/B of block sizes through COMPRESSED_GEMM_TUNE (read once per process), or of two builds of
// the addon: times one op in child processes that alternate between the settings, several
// rounds, and prints each setting's median of its rounds' medians, with the ratio to the first
// setting. A setting is a COMPRESSED_GEMM_TUNE string (keys mc, kc, nc, sparse_m: the kernels'
// block sizes; `kc` also changes the dense kernel, so time only the op whose kernel the setting
// is about), or dir:PATH, a folder holding another build's compressed_gemm_cpu.node
// (COMPRESSED_GEMM_ADDON_DIR), e.g. a copy of build/Release made before a change.
//
//   npm run build:ts && node scripts/microbench/tune-ab.js --op 2:4-f32 --shapes 4096x11008 --m 16,64 \
//     --tune kc=1024 --tune kc=100000 [--rounds 4] [--repeats 9]
//   node scripts/microbench/tune-ab.js --op int4-g128 --shapes 4096x4096 --m 16 --tune dir:/tmp/before --tune dir:build/Release
//   ops: 2:4-f32, 2:4-bf16, dense-f32, dense-bf16, int4-g128, fp8-e4m3
//   --x float16 | bfloat16: activations in that dtype (default float32), y float32
//   --act fp8 | int8: quantized activations (INT4 / FP8 ops)
'use strict';
const { execFileSync } = require('child_process');

function arg(name, dflt) {
  const all = [];
  for (let i = 2; i < process.argv.length; i++) if (process.argv[i] === `--${name}`) all.push(process.argv[i + 1]);
  return all.length ? all : dflt;
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

if (process.env.TUNE_AB_CHILD) {
  const cg = require('../..');
  let s = 12345;
  const rnd = (n) => Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1);
  const [op] = arg('op');
  const repeats = Number(arg('repeats', ['9'])[0]);
  const res = {};
  for (const shape of arg('shapes')[0].split(',')) {
    const [N, K] = shape.split('x').map(Number);
    const data = rnd(N * K);
    const w = {
      '2:4-f32': () => cg.Sparse24Weight.prune(data, [N, K]),
      '2:4-bf16': () => cg.Sparse24Weight.prune(data, [N, K], { dtype: 'bfloat16' }),
      'dense-f32': () => cg.DenseWeight.from(data, [N, K]),
      'dense-bf16': () => cg.DenseWeight.from(data, [N, K], { dtype: 'bfloat16' }),
      'int4-g128': () => cg.Int4Weight.quantize(data, [N, K], { groupSize: 128 }),
      'fp8-e4m3': () => cg.Fp8Weight.quantize(data, [N, K]),
    }[op]();
    for (const M of arg('m')[0].split(',').map(Number)) {
      const [xdt] = arg('x', ['float32']);
      const x = xdt === 'float32' ? rnd(M * K) : cg.DenseWeight.from(rnd(M * K), [M, K], { dtype: xdt }).toDense();
      const opts = xdt === 'float32' ? {} : { dtype: xdt, outDtype: 'float32' };
      const [act] = arg('act', ['native']);
      if (act !== 'native') opts.activations = act;
      const t = [];
      for (let r = 0; r < repeats; r++) {
        const t0 = process.hrtime.bigint();
        cg.linear(x, [M, K], w, opts);
        t.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      res[`${shape} M=${M}`] = median(t);
    }
  }
  process.stdout.write(JSON.stringify(res));
} else {
  const tunes = arg('tune');
  const rounds = Number(arg('rounds', ['4'])[0]);
  const got = tunes.map(() => []);
  for (let r = 0; r < rounds; r++) {
    tunes.forEach((tune, i) => {
      const env = { ...process.env, TUNE_AB_CHILD: '1' };
      if (tune.startsWith('dir:')) env.COMPRESSED_GEMM_ADDON_DIR = require('path').resolve(tune.slice(4));
      else env.COMPRESSED_GEMM_TUNE = tune;
      const out = execFileSync(process.execPath, process.argv.slice(1), { env });
      got[i].push(JSON.parse(String(out)));
    });
  }
  for (const key of Object.keys(got[0][0])) {
    const med = got.map((rs) => median(rs.map((o) => o[key])));
    console.log(`${arg('op')[0]} ${key}: ` + tunes.map((t, i) => `${t} ${med[i].toFixed(2)} ms (${(med[0] / med[i]).toFixed(2)}x)`).join('  '));
  }
}
