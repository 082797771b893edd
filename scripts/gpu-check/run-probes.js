#!/usr/bin/env node
// Runs the probe cases (probe-cases.js: those of test/cuda-sim/ptx.test.ts) through an addon's
// runProbe and compares every lane's registers with the ISA's formulas (ptx-formulas.js), or,
// with --replay, with the registers a previous run recorded (a GPU's dumps against the simulator).
// Plain Node, no dependencies: it runs on the GPU machine with the Node binary brought along.
//
//   node scripts/gpu-check/run-probes.js --addon PATH [--out DIR] [--only REGEX] [--no-isolated]
//        [--replay DUMPS.json] [--seed N]
//     --addon     build-cuda/Release/compressed_gemm_cuda.node (the GPU) or
//                 build/Release/compressed_gemm_cuda_sim.node (the simulated device)
//     --out DIR   writes DIR/probes/dumps.json: the addon, the device, and for every case its
//                 arguments, the registers it returned (or the error) and the comparison: the
//                 fixtures that the simulator is to be held to
//     --only      runs the cases whose name matches
//     --no-isolated  skips the cases that do what the ISA leaves undefined (each otherwise runs
//                 in a child process of its own, as a GPU fault ends the process's CUDA context)
//     --replay    takes the cases (arguments and registers) from a dumps.json and compares the
//                 addon's registers with the recorded ones (the isolated cases are skipped)
//   Prints one line per case and a total; exit 0 when every compared register agrees, 1 when
//   some differ or a probe threw, 2 when the addon cannot be used at all.
//
//   (internal) --case NAME --json: runs one case and prints { result | thrown } as JSON.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const C = require('./probe-cases.js');

function parseArgs(argv) {
  const o = { isolated: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--addon': o.addon = path.resolve(next()); break;
      case '--out': o.out = path.resolve(next()); break;
      case '--only': o.only = new RegExp(next()); break;
      case '--no-isolated': o.isolated = false; break;
      case '--replay': o.replay = path.resolve(next()); break;
      case '--seed': o.seed = Number(next()) >>> 0; break;
      case '--case': o.caseName = next(); break;
      case '--json': o.json = true; break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!o.addon) throw new Error('--addon PATH is required');
  return o;
}

function thrownInfo(e) {
  return {
    name: e && e.constructor ? e.constructor.name : typeof e,
    code: e && e.code,
    cudaError: e && e.cudaError,
    message: e && e.message ? e.message : String(e),
  };
}

function runOne(addon, args) {
  try {
    const r = addon.runProbe(args);
    return { result: { ok: r.ok, error: r.error, regs: r.regs.map((x) => x >>> 0) } };
  } catch (e) {
    return { thrown: thrownInfo(e) };
  }
}

// A case in a child process: { result } or { thrown }, or { crashed } when the child died.
function runIsolated(opts, name) {
  const argv = [__filename, '--addon', opts.addon, '--case', name, '--json'];
  if (opts.seed !== undefined) argv.push('--seed', String(opts.seed));
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', timeout: 120000, maxBuffer: 64 << 20 });
  if (r.error) return { crashed: `could not run the child: ${r.error.message}` };
  if (r.status === 0) {
    try {
      return JSON.parse(r.stdout);
    } catch {
      // fall through
    }
  }
  const tail = (r.stderr || '').trim().split('\n').slice(-4).join(' | ');
  return { crashed: `child exit ${r.status === null ? r.signal : r.status}: ${tail}` };
}

function loadAddon(file) {
  // eslint-disable-next-line import/no-dynamic-require, global-require
  const addon = require(file);
  if (typeof addon.runProbe !== 'function') throw new Error(`${file} has no runProbe export`);
  return addon;
}

function describeAddon(addon, file) {
  const d = { path: file, simulated: addon.simulated === true };
  try {
    if (typeof addon.probe === 'function') d.probe = addon.probe();
    if (typeof addon.compiledTargets === 'function') d.compiledTargets = addon.compiledTargets();
  } catch (e) {
    d.probeError = thrownInfo(e);
  }
  return d;
}

function casesFor(opts) {
  if (!opts.replay) return { cases: C.buildCases({ baseSeed: opts.seed }), from: 'formulas' };
  const dumps = JSON.parse(fs.readFileSync(opts.replay, 'utf8'));
  const cases = [];
  for (const rec of dumps.cases) {
    if (rec.isolate || !rec.result || !Array.isArray(rec.result.regs)) continue;
    const want = rec.result.regs.map((x, i) => (rec.notCompared && rec.notCompared.includes(i) ? null : x >>> 0));
    cases.push({ name: rec.name, group: rec.group, args: C.argsFromJson(rec.args), wants: { recorded: want }, perLane: rec.perLane });
  }
  return { cases, from: `recorded registers of ${opts.replay}` };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.caseName) {
    // child mode: one case, JSON on stdout
    const c = C.buildCases({ baseSeed: opts.seed }).find((x) => x.name === opts.caseName);
    if (!c) throw new Error(`no case ${opts.caseName}`);
    process.stdout.write(JSON.stringify(runOne(loadAddon(opts.addon), c.args)));
    return 0;
  }

  let addon;
  try {
    addon = loadAddon(opts.addon);
  } catch (e) {
    console.log(`FAIL the addon cannot be used: ${e.message}`);
    return 2;
  }
  const device = describeAddon(addon, opts.addon);
  const { cases, from } = casesFor(opts);
  const baseSeed = opts.seed === undefined ? C.DEFAULT_BASE_SEED : opts.seed;
  console.log(`# probes on ${device.simulated ? 'the simulated device' : 'the CUDA addon'} (${opts.addon})`);
  if (device.probe) {
    const p = device.probe;
    console.log(`# device: ${p.ok ? p.devices.map((d) => `${d.name} (sm_${d.sm})`).join(', ') : `none (${p.errorName || p.error})`}; ` +
      `driver ${p.driverVersion}, runtime ${p.runtimeVersion}; SASS ${device.compiledTargets ? device.compiledTargets.join(', ') : '?'}`);
  }
  console.log(`# compared with: ${from}; base seed ${baseSeed}`);

  const records = [];
  let failed = 0, passed = 0, recorded = 0, thrownCount = 0;
  const t0 = Date.now();
  // The undefined-behaviour cases last: a fault they cause on a GPU ends only their own child
  // process's context, but should anything else suffer, the defined cases have run already.
  const ordered = [...cases.filter((c) => !c.isolate), ...cases.filter((c) => c.isolate)];
  for (const c of ordered) {
    if (opts.only && !opts.only.test(c.name)) continue;
    if (c.isolate && !opts.isolated) continue;
    const started = Date.now();
    const outcome = c.isolate ? runIsolated(opts, c.name) : runOne(addon, c.args);
    const ms = Date.now() - started;
    const rec = {
      name: c.name,
      group: c.group,
      args: C.argsToJson(c.args),
      perLane: c.perLane,
      isolate: !!c.isolate,
      ms,
    };
    const firstWant = Object.values(c.wants)[0];
    if (firstWant) rec.notCompared = firstWant.flatMap((w, i) => (w === null ? [i] : []));
    if (rec.notCompared && rec.notCompared.length === 0) delete rec.notCompared;
    if (c.note) rec.note = c.note;
    if (outcome.result) rec.result = outcome.result;
    if (outcome.thrown) rec.thrown = outcome.thrown;
    if (outcome.crashed) rec.crashed = outcome.crashed;

    if (c.isolate) {
      // Undefined behaviour: recorded, never a failure.
      recorded++;
      const what = outcome.result
        ? outcome.result.ok
          ? `ran: regs recorded (${compareSummary(outcome.result.regs, C.buildCases({ baseSeed: opts.seed }), c)})`
          : `refused: ${outcome.result.error.split('\n')[0]}`
        : outcome.thrown
          ? `threw ${outcome.thrown.code || outcome.thrown.name}${outcome.thrown.cudaError ? ' ' + outcome.thrown.cudaError : ''}: ${outcome.thrown.message.split('\n')[0]}`
          : `crashed: ${outcome.crashed}`;
      rec.outcome = what;
      console.log(`INFO ${c.name}: ${what}`);
      records.push(rec);
      continue;
    }

    if (!outcome.result || !outcome.result.ok) {
      failed++;
      if (outcome.thrown) thrownCount++;
      const why = outcome.thrown
        ? `threw ${outcome.thrown.code || outcome.thrown.name}${outcome.thrown.cudaError ? ' ' + outcome.thrown.cudaError : ''}: ${outcome.thrown.message}`
        : outcome.crashed
          ? `crashed: ${outcome.crashed}`
          : `refused: ${outcome.result.error}`;
      rec.check = { pass: false, why };
      console.log(`FAIL ${c.name}: ${why}`);
      records.push(rec);
      continue;
    }
    const floats = c.group === 'mma' || c.group === 'mma-sp' || c.group === 'mma-tile';
    const check = { pass: true, against: {} };
    for (const [source, want] of Object.entries(c.wants)) {
      const cmp = C.compareRegs(outcome.result.regs, want, c.perLane, floats);
      check.against[source] = cmp;
      if (cmp.mismatches) check.pass = false;
    }
    rec.check = check;
    if (check.pass) {
      passed++;
      const n = Object.values(check.against).map((x) => x.compared);
      console.log(`PASS ${c.name} (${n[0]} registers vs ${Object.keys(check.against).join(' and ')}${rec.notCompared ? `; ${rec.notCompared.length} recorded only` : ''})`);
    } else {
      failed++;
      console.log(`FAIL ${c.name}:`);
      for (const [source, cmp] of Object.entries(check.against)) {
        if (!cmp.mismatches) continue;
        console.log(`  vs ${source}: ${cmp.mismatches} of ${cmp.compared} registers differ`);
        for (const line of cmp.first) console.log(`    ${line}`);
      }
    }
    if (rec.notCompared && c.name.startsWith('cp_async')) {
      const poisoned = rec.notCompared.filter((i) => outcome.result.regs[i] === 0xffffffff).length;
      const landed = rec.notCompared.filter((i) => outcome.result.regs[i] === (firstWant[i + c.perLane / 2] >>> 0)).length;
      rec.pendingGroup = { words: rec.notCompared.length, equalToLanded: landed, all0xFF: poisoned };
      console.log(`  note: after wait_group 1, ${landed} of ${rec.notCompared.length} words of group 2 had already landed`);
    }
    records.push(rec);
  }
  const total = `${passed} passed, ${failed} failed, ${recorded} undefined-behaviour cases recorded, in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
  console.log(`# ${total}`);
  const nothing = passed + failed === 0;
  if (nothing) console.log(`FAIL no case was compared${opts.replay ? ': the dumps hold no registers to replay' : opts.only ? ` (--only ${opts.only} matches none)` : ''}`);

  if (opts.out) {
    const dir = path.join(opts.out, 'probes');
    fs.mkdirSync(dir, { recursive: true });
    const dumps = {
      schema: 1,
      generatedBy: 'scripts/gpu-check/run-probes.js',
      date: new Date().toISOString(),
      comparedWith: from,
      baseSeed,
      addon: device,
      node: process.version,
      summary: { passed, failed, recorded, thrown: thrownCount },
      cases: records,
    };
    fs.writeFileSync(path.join(dir, 'dumps.json'), JSON.stringify(dumps) + '\n');
    console.log(`# dumps: ${path.join(dir, 'dumps.json')}`);
  }
  return failed || nothing ? 1 : 0;
}

// For an undefined-behaviour case that ran: how its registers compare with the same form's
// fault-free formula (the lanes a fault changed).
function compareSummary(regs, allCases, c) {
  const base = allCases.find((x) => x.args.kind === c.args.kind && x.args.fault === undefined);
  if (!base || !base.wants.isa) return 'no reference';
  const cmp = C.compareRegs(regs, base.wants.isa, c.perLane);
  return cmp.mismatches ? `${cmp.mismatches} registers differ from the fault-free formula; first: ${cmp.first[0]}` : 'equal to the fault-free formula';
}

if (require.main === module) {
  let code;
  try {
    code = main();
  } catch (e) {
    console.log(`FAIL run-probes: ${e && e.stack ? e.stack : e}`);
    code = 2;
  }
  process.exitCode = code;
}

module.exports = { runOne };
