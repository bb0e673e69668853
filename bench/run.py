#!/usr/bin/env python3
"""Times each benchmark program in Flow and in Lua 5.4 as whole processes, side by side.

Usage: python3 bench/run.py [FLOW_BINARY] [--runs N]   (default build/flow, 7 runs)

For each program prints the median wall time of N runs of `flow run X.flow` and of
`lua5.4 X.lua`, and their ratio (Flow / Lua); both must print the same result.
"""
import os, statistics, subprocess, sys, time

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
    print(f"{'program':<10} {'what':<42} {'flow ms':>8} {'lua ms':>8} {'ratio':>6}")
    worst = 0.0
    for name, what in PROGRAMS:
        f_time, f_out = timed([flow, "run", os.path.join(HERE, name + ".flow"), "--store", "/tmp/flow-bench-store"], runs)
        l_time, l_out = timed([lua, os.path.join(HERE, name + ".lua")], runs)
        if f_out.strip() != l_out.strip():
            sys.exit(f"{name}: flow printed {f_out!r}, lua printed {l_out!r}")
        ratio = f_time / l_time
        worst = max(worst, ratio)
        print(f"{name:<10} {what:<42} {f_time * 1000:8.1f} {l_time * 1000:8.1f} {ratio:6.2f}")
    print(f"median of {runs} runs each; worst ratio {worst:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
