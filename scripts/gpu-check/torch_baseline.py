#!/usr/bin/env python3
"""cuBLAS baselines for scripts/gpu-check.sh: torch.matmul in fp16 and bf16, timed with CUDA events.

    python3 scripts/gpu-check/torch_baseline.py --json OUT/timings.json [--ours ours.json] [--quick]

Shapes: 8192 x 8192 x 8192, and the linear layers of a 7B LLM, y = x @ W^T with W of N x K in
{4096 x 4096, 11008 x 4096, 4096 x 11008} (W row-major, so this is the "TN" GEMM that F.linear
runs), at M (tokens) in {1, 16, 128, 512, 4096}.

Method (../shared/GPU.md, "On a GPU machine"): for each case, enough copies of the inputs to span
at least twice the L2 are made and rotated, so that no timed call finds its operands in the L2;
warm-up calls first; then each call is timed alone with a pair of CUDA events, and the median
(with the 10th and 90th percentiles) is reported; and `graph_ms`: the same calls captured back to
back in a CUDA graph, per call (Timer.graph_time: no host time between the calls). The card is measured as found: no clock or
setting is changed. The JSON is rewritten after every case, so that a run cut short keeps what it
measured.

Best-effort extras, where this PyTorch has them, on the LLM shapes: torch._scaled_mm (FP8 e4m3,
per-tensor scales, bf16 out) and to_sparse_semi_structured (2:4, cuSPARSELt/CUTLASS), recorded as
unavailable with the reason otherwise.

--ours FILE: our own kernels' timings from scripts/gpu-check/bench-ours.js (the dense and 2:4
GEMMs, timed the same way), copied into the JSON and the table as they are.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

LLM_SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008)]  # (N, K)
LLM_MS = [1, 16, 128, 512, 4096]


def log(msg):
    print(msg, flush=True)


def percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    i = (len(xs) - 1) * q
    lo, hi = math.floor(i), math.ceil(i)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


class Timer:
    def __init__(self, torch, l2_bytes, quick):
        self.torch = torch
        self.l2 = l2_bytes
        self.quick = quick

    def copies_for(self, bytes_per_set):
        """How many input sets span at least twice the L2 (at most 64)."""
        return max(1, min(64, math.ceil(2 * self.l2 / max(1, bytes_per_set))))

    def time(self, fn_for_set, nsets, est_ms=None):
        """Median etc. of single calls fn_for_set(i % nsets)(), each between two CUDA events."""
        torch = self.torch
        warm = 3 if self.quick else 10
        for i in range(warm):
            fn_for_set(i % nsets)()
        torch.cuda.synchronize()
        # Calibrate the repetitions on one more call: about 0.25 s (0.1 s quick) per case, 10..500.
        t0 = time.perf_counter()
        fn_for_set(0)()
        torch.cuda.synchronize()
        one = max(1e-6, time.perf_counter() - t0)
        budget = 0.1 if self.quick else 0.25
        reps = int(max(10, min(500 if not self.quick else 100, budget / one)))
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        for i in range(reps):
            f = fn_for_set(i % nsets)
            starts[i].record()
            f()
            ends[i].record()
        torch.cuda.synchronize()
        ms = [s.elapsed_time(e) for s, e in zip(starts, ends)]
        r = {
            "median_ms": statistics.median(ms),
            "p10_ms": percentile(ms, 0.1),
            "p90_ms": percentile(ms, 0.9),
            "reps": reps,
            "warmup": warm,
            "input_sets": nsets,
        }
        r.update(self.graph_time(fn_for_set, nsets))
        return r

    def graph_time(self, fn_for_set, nsets):
        """The same calls back to back in a CUDA graph: graph_ms per call, without the host.

        The 2026-12-04 run showed why: each call timed alone includes PyTorch's host time between
        the two events (25-33 us for any shape at M <= 128), which a small kernel is shorter than.
        Here `calls` calls over the rotated input sets are captured once, the graph replayed
        between two events, the time divided by `calls`; the median over the replays. Any
        failure (a call that cannot be captured) is recorded as graph_error, and the per-call
        figures above stand alone."""
        torch = self.torch
        try:
            calls = nsets * max(1, math.ceil(32 / nsets))
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for i in range(nsets):
                    fn_for_set(i)()
            torch.cuda.current_stream().wait_stream(side)
            torch.cuda.synchronize()
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for i in range(calls):
                    fn_for_set(i % nsets)()
            g.replay()
            torch.cuda.synchronize()
            per = []
            for _ in range(5 if self.quick else 15):
                st = torch.cuda.Event(enable_timing=True)
                en = torch.cuda.Event(enable_timing=True)
                st.record()
                g.replay()
                en.record()
                torch.cuda.synchronize()
                per.append(st.elapsed_time(en) / calls)
            del g
            return {"graph_ms": statistics.median(per), "graph_calls": calls, "graph_replays": len(per)}
        except Exception as e:  # noqa: BLE001 (best effort: the per-call figures stand)
            try:
                torch.cuda.synchronize()
            except Exception:  # noqa: BLE001
                pass
            return {"graph_error": f"{type(e).__name__}: {str(e)[:200]}"}


def gemm_case(torch, timer, name, dtype_name, M, N, K):
    """torch.matmul(x, W.t()) with x M x K and W N x K, both row-major."""
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    elt = 2
    per_set = (M * K + N * K + M * N) * elt
    nsets = timer.copies_for(per_set)
    gen = torch.Generator(device="cuda")
    gen.manual_seed(1234)
    xs = [torch.randn(M, K, device="cuda", dtype=dtype, generator=gen) for _ in range(nsets)]
    ws = [torch.randn(N, K, device="cuda", dtype=dtype, generator=gen) for _ in range(nsets)]
    ys = [torch.empty(M, N, device="cuda", dtype=dtype) for _ in range(nsets)]

    def fn_for_set(i):
        x, w, y = xs[i], ws[i], ys[i]
        return lambda: torch.matmul(x, w.t(), out=y)

    r = timer.time(fn_for_set, nsets)
    del xs, ws, ys
    return finish(r, name, "torch.matmul (cuBLAS)", dtype_name, M, N, K, per_set)


def finish(r, name, op, dtype_name, M, N, K, bytes_moved):
    t = r["median_ms"] * 1e-3
    r.update({
        "name": name,
        "op": op,
        "dtype": dtype_name,
        "M": M,
        "N": N,
        "K": K,
        "tflops": 2.0 * M * N * K / t / 1e12 if t > 0 else None,
        "gbps": bytes_moved / t / 1e9 if t > 0 else None,
    })
    return r


def fp8_case(torch, timer, name, M, N, K):
    if not hasattr(torch, "_scaled_mm") or not hasattr(torch, "float8_e4m3fn"):
        raise RuntimeError("this PyTorch has no torch._scaled_mm / float8_e4m3fn")
    per_set = M * K + N * K + M * N * 2
    nsets = timer.copies_for(per_set)
    xs = [torch.randn(M, K, device="cuda").to(torch.float8_e4m3fn) for _ in range(nsets)]
    ws = [torch.randn(N, K, device="cuda").to(torch.float8_e4m3fn) for _ in range(nsets)]
    one = torch.ones((), device="cuda", dtype=torch.float32)

    def fn_for_set(i):
        x, w = xs[i], ws[i]
        return lambda: torch._scaled_mm(x, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    fn_for_set(0)()  # raises here when the shape is not supported
    r = timer.time(fn_for_set, nsets)
    return finish(r, name, "torch._scaled_mm (FP8 e4m3, per-tensor scales, bf16 out)", "fp8e4m3", M, N, K, per_set)


def sparse24_case(torch, timer, name, M, N, K):
    from torch.sparse import to_sparse_semi_structured  # noqa: WPS433

    dtype = torch.float16
    # A 2:4 pattern: keep 2 of each 4 along K.
    mask = torch.tensor([1, 1, 0, 0], device="cuda", dtype=dtype).repeat(N, K // 4)
    per_set = (M * K + N * K // 2 + N * K // 8 + M * N) * 2
    nsets = timer.copies_for(per_set)
    ws = [to_sparse_semi_structured(torch.randn(N, K, device="cuda", dtype=dtype) * mask) for _ in range(nsets)]
    xs = [torch.randn(M, K, device="cuda", dtype=dtype) for _ in range(nsets)]

    def fn_for_set(i):
        x, w = xs[i], ws[i]
        return lambda: torch.nn.functional.linear(x, w)

    fn_for_set(0)()
    r = timer.time(fn_for_set, nsets)
    return finish(r, name, "F.linear with to_sparse_semi_structured (2:4, fp16)", "fp16-2:4", M, N, K, per_set)


def table(results, ours):
    lines = []
    lines.append(f"{'case':<28} {'dtype':<9} {'M':>5} {'N':>6} {'K':>6} {'median ms':>10} {'p10':>9} {'p90':>9} {'TFLOP/s':>8} {'GB/s':>7} {'graph ms':>9}")
    for r in results:
        if "error" in r:
            lines.append(f"{r['name']:<28} {r['dtype']:<9} {r['M']:>5} {r['N']:>6} {r['K']:>6}   unavailable: {r['error'][:70]}")
            continue
        lines.append(
            f"{r['name']:<28} {r['dtype']:<9} {r['M']:>5} {r['N']:>6} {r['K']:>6} {r['median_ms']:>10.4f} {r['p10_ms']:>9.4f} "
            f"{r['p90_ms']:>9.4f} {r['tflops']:>8.1f} {r['gbps']:>7.0f} "
            f"{(format(r['graph_ms'], '>9.4f') if 'graph_ms' in r else '        -')}")
    status = (ours or {}).get("status", "not built yet")
    if status == "measured":
        for r in ours.get("results", []):
            lines.append(f"{'ours ' + r.get('name', ''):<28} {r.get('dtype', ''):<9} {r.get('M', ''):>5} {r.get('N', ''):>6} "
                         f"{r.get('K', ''):>6} {r.get('median_ms', float('nan')):>10.4f}")
        if ours.get("skipped_for_time"):
            lines.append(f"ours: {ours['skipped_for_time']} cases not run (out of the step's time)")
        for o in ours.get("lora_overhead", []):
            lines.append(f"ours LoRA r{o['rank']} {o['name']}: (shrink {o['shrink_ms']:.4f} + fused GEMM {o['fused_ms']:.4f} ms) / "
                         f"plain GEMM {o['base_ms']:.4f} ms = {o['ratio']:.3f}x")
        a = ours.get("async") or {}
        if "total_ms" in a:
            lines.append(f"ours async: copyToHostAsync returned in {a['copy_call_ms']:.3f} ms behind {a['kernels']} queued "
                         f"{a['M']}x{a['N']}x{a['K']} GEMMs that took {a['total_ms']:.1f} ms (waited: {a['waited']})")
        elif "error" in a:
            lines.append(f"ours async: unavailable: {a['error'][:70]}")
    else:
        lines.append(f"ours (dense, 2:4 and INT4 GEMMs, LoRA): {status}" + (f" ({ours.get('reason')})" if ours and ours.get("reason") else ""))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, help="where to write the results (rewritten after each case)")
    ap.add_argument("--ours", help="bench-ours.js output to include")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    ap.add_argument("--no-extras", action="store_true", help="skip the FP8 and 2:4 extras")
    args = ap.parse_args()

    out = {
        "schema": 1,
        "generatedBy": "scripts/gpu-check/torch_baseline.py",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "method": "CUDA events around each call, median of reps after warm-up; input sets rotated to span >= 2x L2; clocks as found",
        "layout": "y[M,N] = x[M,K] @ W[N,K]^T, all row-major (F.linear's TN GEMM)",
        "results": [],
        "extras": [],
        "ours": None,
    }
    if args.ours:
        try:
            with open(args.ours) as f:
                out["ours"] = json.load(f)
        except Exception as e:  # noqa: BLE001
            out["ours"] = {"status": "not built yet", "reason": f"could not read {args.ours}: {e}"}
    else:
        out["ours"] = {"status": "not built yet", "reason": "bench-ours.js was not run"}

    def save():
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, args.json)

    try:
        import torch
    except Exception as e:  # noqa: BLE001
        out["error"] = f"cannot import torch: {e}"
        save()
        log(out["error"])
        return 2
    out["torch"] = torch.__version__
    out["torchCuda"] = torch.version.cuda
    if not torch.cuda.is_available():
        out["error"] = "torch.cuda.is_available() is False"
        save()
        log(out["error"])
        return 2
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 0) or 50 * 2**20
    out["device"] = {
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "multiProcessorCount": props.multi_processor_count,
        "totalMemory": props.total_memory,
        "l2CacheSize": l2,
    }
    out["cublasTF32"] = bool(torch.backends.cuda.matmul.allow_tf32)
    log(f"# {props.name} (sm_{props.major}{props.minor}), torch {torch.__version__} (CUDA {torch.version.cuda}), L2 {l2 / 2**20:.0f} MiB")
    save()

    timer = Timer(torch, l2, args.quick)
    cases = [("square 8192", 8192, 8192, 8192)]
    for (N, K) in LLM_SHAPES:
        for M in LLM_MS:
            cases.append((f"llm {N}x{K}", M, N, K))

    for dtype_name in ("fp16", "bf16"):
        for (name, M, N, K) in cases:
            try:
                r = gemm_case(torch, timer, name, dtype_name, M, N, K)
            except Exception as e:  # noqa: BLE001
                r = {"name": name, "dtype": dtype_name, "M": M, "N": N, "K": K, "error": f"{type(e).__name__}: {e}"}
            out["results"].append(r)
            save()
            if "error" in r:
                log(f"{name} {dtype_name} M={M}: {r['error']}")
            else:
                log(f"{name} {dtype_name} M={M}: {r['median_ms']:.4f} ms, {r['tflops']:.1f} TFLOP/s")
            torch.cuda.empty_cache()

    if not args.no_extras:
        for (label, fn) in (("fp8", fp8_case), ("sparse 2:4", sparse24_case)):
            for (N, K) in LLM_SHAPES:
                for M in (16, 4096):
                    name = f"{label} llm {N}x{K}"
                    try:
                        r = fn(torch, timer, name, M, N, K)
                    except Exception as e:  # noqa: BLE001
                        r = {"name": name, "dtype": label, "M": M, "N": N, "K": K, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
                    out["extras"].append(r)
                    save()
                    log(f"{name} M={M}: " + (r["error"] if "error" in r else f"{r['median_ms']:.4f} ms, {r['tflops']:.1f} TFLOP/s"))
                    torch.cuda.empty_cache()

    out["table"] = table(out["results"] + out["extras"], out["ours"])
    save()
    log("")
    log(out["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
