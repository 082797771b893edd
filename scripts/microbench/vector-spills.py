#!/usr/bin/env python3
"""Lists the CPU kernels' loops that move vector registers through the stack.

    npx node-gyp build && python3 scripts/microbench/vector-spills.py [OBJ.o ...]

(default: every object of the cg_kernels_* targets under build/Release). For each backward
branch of a function that spans at most 600 instructions and holds at least 4 vfmadd, it counts
the instructions with an xmm/ymm/zmm operand and an %rsp/%rbp address: in a register tile's K
loop, each is an accumulator kept in memory (a load and a store per FMA). Small loops with a few
such moves (epilogues, the LoRA terms) are expected; a K loop with tens of FMAs and any stack
traffic is the thing to look at (objdump -d -C the object). This is how the inlined run_tile
spills of gemm_driver_impl.h were found.
"""
import bisect
import glob
import re
import subprocess
import sys


def loops(obj):
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", obj], capture_output=True, text=True, check=True).stdout
    ins, fn = [], None
    for line in text.split("\n"):
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            fn = m.group(1)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if m and fn:
            ins.append((int(m.group(1), 16), m.group(2), m.group(3), fn))
    where = {a: i for i, (a, _, _, _) in enumerate(ins)}
    found = {}
    for i, (a, op, args, fn) in enumerate(ins):
        if not op.startswith("j") or op == "jmp":
            continue
        m = re.match(r"([0-9a-f]+) <", args)
        if not m:
            continue
        target = int(m.group(1), 16)
        if target >= a or target not in where or i - where[target] > 600:
            continue
        body = ins[where[target]:i + 1]
        fmas = sum(1 for b in body if b[1].startswith("vfmadd"))
        stack = sum(1 for b in body if re.search(r"[xyz]mm", b[2]) and re.search(r"\(%r[bs]p", b[2]))
        if fmas >= 4 and stack:
            name = re.sub(r"cg::\w+::\(anonymous namespace\)::", "", fn)
            found.setdefault(name, []).append((fmas, stack))
    return found


def main():
    objs = sys.argv[1:] or sorted(glob.glob("build/Release/obj.target/cg_kernels_*/**/*.o", recursive=True))
    for obj in objs:
        found = loops(obj)
        print(f"{obj}: {sum(len(v) for v in found.values())} loops with vector stack traffic")
        for name, hits in sorted(found.items(), key=lambda kv: -max(f for f, _ in kv[1])):
            print(f"    (FMAs, stack moves) {sorted(hits, reverse=True)[:4]}  {name[:160]}")


if __name__ == "__main__":
    main()
