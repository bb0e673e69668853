#!/usr/bin/env python3
"""Times each benchmark program in Flow and in Lua 5.4 as whole processes, side by side.

Usage: python3 bench/run.py [FLOW_BINARY] [--runs N]   (default build/flow, 7 runs)

For each program prints the median wall time of N runs of `lua5.4 X.lua`, of
`flow run --ephemeral X.flow` (the VM alone: the language against Lua, the ratio the
target is about) and of `flow run X.flow` (a durable run: a store created, a checkpoint
at the final print, which here persists the whole live heap once). Both languages must
print the same result.
"""
import os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = [
    ("fib", "fib(30), recursive calls"),
    ("sum_mod", "sum of i*i % 7, i in 1..10,000,000"),
    ("list_sum", "build a 1,000,000-element list, sum it"),
    ("strings", "200,000 strings \"x${i}\", joined length"),
    ("map", "200,000-key map, insert then look up"),
]


def timed(cmd, runs):
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if p.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {p.stderr}")
        out = p.stdout
    return statistics.median(times), out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--runs")]
    runs = 7
    for a in sys.argv[1:]:
        if a.startswith("--runs"):
            runs = int(a.split("=", 1)[1])
    flow = os.path.abspath(args[0] if args else os.path.join(HERE, "..", "build", "flow"))
    lua = "lua5.4"
    print(f"{'program':<10} {'what':<42} {'lua ms':>7} {'flow ms':>8} {'ratio':>6} {'durable ms':>11} {'ratio':>6}")
    worst = 0.0
    store = tempfile.mkdtemp(prefix="flow-bench-store-")
    for name, what in PROGRAMS:
        program = os.path.join(HERE, name + ".flow")
        l_time, l_out = timed([lua, os.path.join(HERE, name + ".lua")], runs)
        f_time, f_out = timed([flow, "run", "--ephemeral", program], runs)
        d_time, d_out = timed([flow, "run", program, "--store", store], runs)
        for out in (f_out, d_out):
            if out.strip() != l_out.strip():
                sys.exit(f"{name}: flow printed {out!r}, lua printed {l_out!r}")
        worst = max(worst, f_time / l_time)
        print(f"{name:<10} {what:<42} {l_time * 1000:7.1f} {f_time * 1000:8.1f} {f_time / l_time:6.2f} "
              f"{d_time * 1000:11.1f} {d_time / l_time:6.2f}")
    shutil.rmtree(store, ignore_errors=True)
    print(f"median of {runs} runs each; worst VM ratio {worst:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
