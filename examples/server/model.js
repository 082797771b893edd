// The MLP block the server serves, loaded from the checkpoint make-model.js writes:
//
//   y = down( SiLU(gate(x)) * up(x) )      gate, up: [I, H] INT4 (GPTQ);  down: [H, I] 2:4 float16
//
// each projection with the request's LoRA adapter added (PEFT: alpha = lora_alpha / r). A batch
// is one cg.linearMultiLoraAsync call per projection, every row with its own adapter (-1: none),
// so users of different adapters share one pass over the weights (S-LoRA / Punica).
'use strict';
const fs = require('fs');
const cg = require('./compressed-gemm');

const PREFIX = 'model.layers.0.mlp';
const PROJECTIONS = ['gate_proj', 'up_proj', 'down_proj'];

function tensor(file, name) {
  const t = file.tensors[name];
  if (!t) throw new RangeError(`the checkpoint has no tensor '${name}'`);
  return t.data;
}

function metaNumber(file, key) {
  const v = Number(file.metadata[key]);
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`the checkpoint's __metadata__.${key} is not a positive integer`);
  return v;
}

/** Loads the checkpoint: the weights are packed for the kernels once, here, not per request. */
function loadModel(path) {
  const file = cg.safetensors.read(fs.readFileSync(path));
  const H = metaNumber(file, 'hidden_size');
  const I = metaNumber(file, 'intermediate_size');
  const gptq = (proj) => cg.Int4Weight.fromGPTQ({
    qweight: tensor(file, `${PREFIX}.${proj}.qweight`),
    qzeros: tensor(file, `${PREFIX}.${proj}.qzeros`),
    scales: tensor(file, `${PREFIX}.${proj}.scales`),
    gIdx: tensor(file, `${PREFIX}.${proj}.g_idx`),
  }, [I, H]);
  const weights = {
    gate_proj: gptq('gate_proj'),
    up_proj: gptq('up_proj'),
    // compress (not prune): the checkpoint already is 2:4; anything else is ERR_NOT_2_4.
    down_proj: cg.Sparse24Weight.compress(tensor(file, `${PREFIX}.down_proj.weight`), [H, I], { dtype: 'float16' }),
  };
  const adapterConfig = JSON.parse(file.metadata.adapters || '{}');
  const adapterNames = Object.keys(adapterConfig);
  // One list per projection, in the same order: adapter i of every list belongs to adapterNames[i].
  const adapters = { gate_proj: [], up_proj: [], down_proj: [] };
  for (const name of adapterNames) {
    const { r, lora_alpha: loraAlpha } = adapterConfig[name];
    for (const proj of PROJECTIONS) {
      const w = weights[proj];
      adapters[proj].push(new cg.LoraAdapter({
        A: tensor(file, `lora.${name}.mlp.${proj}.lora_A.weight`),
        B: tensor(file, `lora.${name}.mlp.${proj}.lora_B.weight`),
        alpha: loraAlpha / r,
      }, [w.shape[0], w.shape[1]]));
    }
  }
  return new MlpBlock(H, I, weights, adapters, adapterNames);
}

class MlpBlock {
  constructor(hidden, intermediate, weights, adapters, adapterNames) {
    this.hidden = hidden;
    this.intermediate = intermediate;
    this.weights = weights;
    this.adapters = adapters;
    this.adapterNames = adapterNames;
    this.adapterIndex = new Map(adapterNames.map((n, i) => [n, i]));
    /** linearMultiLoraAsync calls made so far (three per batch). */
    this.linearCalls = 0;
  }

  /** x [M, H] float32, rowAdapter [M] (an index into adapterNames, or -1) -> y [M, H] float32. */
  async forward(x, M, rowAdapter) {
    const { hidden: H, intermediate: I, weights: w, adapters: a } = this;
    const layer = (proj, input, K) => {
      this.linearCalls++;
      return cg.linearMultiLoraAsync(input, [M, K], w[proj], a[proj], rowAdapter);
    };
    // gate and up are both in flight at once: on a GPU their kernels can overlap; the CPU
    // backend runs them one after the other on its kernel threads.
    const [g, u] = await Promise.all([layer('gate_proj', x, H), layer('up_proj', x, H)]);
    // SiLU(gate) * up, in place: M * I elements on the event loop, a few microseconds per row.
    for (let i = 0; i < M * I; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
    return layer('down_proj', g, I);
  }

  describe() {
    return {
      hidden: this.hidden,
      intermediate: this.intermediate,
      layers: PROJECTIONS.map((proj) => {
        const w = this.weights[proj];
        return { name: proj, format: w.format, dtype: w.dtype, shape: w.shape, bytes: w.byteLength, ...(w.format === 'int4' ? { groupSize: w.groupSize, actOrder: w.actOrder } : {}) };
      }),
      adapters: this.adapterNames.map((name, i) => ({ name, rank: this.adapters.gate_proj[i].rank, alpha: this.adapters.gate_proj[i].alpha })),
    };
  }
}

module.exports = { loadModel, MlpBlock, PROJECTIONS };
