#!/usr/bin/env python3
"""Times each benchmark program in Flow and in Lua 5.4 as whole processes, side by side.

Usage: python3 bench/run.py [FLOW_BINARY] [--runs=N] [--vs=OLD_FLOW_BINARY]
       (default build/flow, 7 runs)

For each program prints the median wall time of N runs of `lua5.4 X.lua`, of
`flow run --ephemeral X.flow` (the VM alone: the language against Lua) and of
`flow run X.flow` (a durable run: a store created, a checkpoint at the final print, which
here persists the whole live heap once), with each Flow time's ratio to Lua's. Targets:
ephemeral <= 1.0x, durable <= 1.5x. With --vs, the same columns for an older binary too,
so that before and after are measured in one session.

The commands of one program are interleaved, round after round (lua, flow, old flow, ...),
so that a change in the machine's load moves every column alike. Every command must print
what Lua prints.

`flow run` keeps compiled programs in a cache (docs/bytecode.md, "The program cache"): here
a fresh one (FLOW_CACHE_DIR), so the first round compiles and the median is of runs that
load the cached module, as a program run again does.
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


def run_once(cmd):
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {p.stderr}")
    return elapsed, p.stdout


def interleaved(commands, runs):
    """Median seconds of each command, running them in turn `runs` times."""
    times = [[] for _ in commands]
    outputs = [None] * len(commands)
    for _ in range(runs):
        for i, cmd in enumerate(commands):
            t, outputs[i] = run_once(cmd)
            times[i].append(t)
    return [statistics.median(t) for t in times], outputs


def flow_commands(flow, program, store):
    return [[flow, "run", "--ephemeral", program], [flow, "run", program, "--store", store]]


def main():
    runs, old = 7, None
    args = []
    for a in sys.argv[1:]:
        if a.startswith("--runs="):
            runs = int(a.split("=", 1)[1])
        elif a.startswith("--vs="):
            old = os.path.abspath(a.split("=", 1)[1])
        elif a.startswith("-"):
            sys.exit(f"unknown option {a}\n{__doc__}")
        else:
            args.append(a)
    flow = os.path.abspath(args[0] if args else os.path.join(HERE, "..", "build", "flow"))
    binaries = [flow] + ([old] if old else [])
    header = f"{'program':<10} {'lua ms':>7}"
    for label in (["new "] if old else [""]) + (["old "] if old else []):
        header += f" {label + 'eph ms':>11} {'ratio':>6} {label + 'durable ms':>15} {'ratio':>6}"
    print(header)
    worst = [0.0, 0.0]
    stores = [tempfile.mkdtemp(prefix="flow-bench-store-") for _ in binaries]
    cache = os.environ["FLOW_CACHE_DIR"] = tempfile.mkdtemp(prefix="flow-bench-cache-")
    for name, what in PROGRAMS:
        program = os.path.join(HERE, name + ".flow")
        commands = [["lua5.4", os.path.join(HERE, name + ".lua")]]
        for binary, store in zip(binaries, stores):
            commands += flow_commands(binary, program, store)
        medians, outputs = interleaved(commands, runs)
        for out in outputs[1:]:
            if out.strip() != outputs[0].strip():
                sys.exit(f"{name}: flow printed {out!r}, lua printed {outputs[0]!r}")
        lua = medians[0]
        line = f"{name:<10} {lua * 1000:7.1f}"
        for i in range(len(binaries)):
            eph, dur = medians[1 + 2 * i], medians[2 + 2 * i]
            line += f" {eph * 1000:11.1f} {eph / lua:6.2f} {dur * 1000:15.1f} {dur / lua:6.2f}"
            if i == 0:
                worst = [max(worst[0], eph / lua), max(worst[1], dur / lua)]
        print(line)
    for folder in stores + [cache]:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"median of {runs} interleaved runs each; worst ratio to Lua: ephemeral {worst[0]:.2f} (target <= 1.0), "
          f"durable {worst[1]:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
