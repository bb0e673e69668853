#!/usr/bin/env python3
"""Compiling a program of many files (issue 13 point 8), whole-process figures:
  `flow check` of a 5,000-line program split in 20 modules (the main file imports them;
  each module imports up to two earlier ones), against the same functions in one file and
  against `flow check` of a one-line program (the process's start: ANTLR's and the
  loader's cost, paid once whatever the program), all measured in this run.
`flow check` parses, compiles and verifies every file and runs nothing; the compiled
program cache is not involved (`flow run` of an unchanged program skips all of this).

Usage: python3 bench/compile_bench.py [FLOW_BINARY] [--runs=N] [--modules=N] [--lines=N]
       (default build/flow, 11 runs, 20 modules, 5000 lines)"""
import os, statistics, subprocess, sys, tempfile, time

from benchlib import timed


def function(m, k, imports):
    """One function of module m, about 12 lines of the kinds workflows have."""
    call = f"{imports[0]}.f{k % 5}_{imports[0][1:]}(n)" if imports else "n"
    return [
        f"fn f{k}_{m}(n) {{",
        f"  let items = [n, n + 1, n + {k}]",
        f"  let total = 0",
        f"  for i, x in items {{",
        f"    if x % 2 == 0 {{ total += x * i }} else if x > {k} {{ total -= 1 }} else {{ total += {call} }}",
        f"  }}",
        f"  let label = \"m{m} f{k}: ${{total}}\".pad_start(20)",
        f"  let doubled = items.map(fn(v) {{ return v * 2 }}).filter(fn(v) {{ return v > {k} }})",
        f"  try {{ total += len(doubled) }} catch e {{ total = 0 }}",
        f"  let record = {{name: label, total: total, tags: [\"a\", \"b\"], ok: total > 0}}",
        f"  return record.total + len(record.tags)",
        f"}}",
    ]


def write_program(work, modules, lines):
    per_module = max(1, -(-lines // (modules * 12)))  # functions of 12 lines, rounded up
    one_file = []
    for m in range(modules):
        imports = [f"m{m - 1}"] + ([f"m{m // 2}"] if m >= 4 else []) if m > 0 else []
        header = [f'import "m{i[1:]}.flow" as {i}' for i in imports]  # relative to lib/
        body = [line for k in range(per_module) for line in function(m, k, imports)]
        with open(os.path.join(work, "lib", f"m{m}.flow"), "w") as f:
            f.write("\n".join(header + body) + "\n")
        # In one file, calls into "m3" become plain calls: the same code, no imports.
        one_file += [line.replace(f"{imports[0]}.", "") if imports else line for line in body]
    main = [f'import "lib/m{m}.flow" as m{m}' for m in range(modules)]
    main += [f"print(m{modules - 1}.f0_{modules - 1}(1))"]
    with open(os.path.join(work, "main.flow"), "w") as f:
        f.write("\n".join(main) + "\n")
    with open(os.path.join(work, "one.flow"), "w") as f:
        f.write("\n".join(one_file + [f"print(f0_{modules - 1}(1))"]) + "\n")
    total = sum(1 for m in range(modules) for _ in open(os.path.join(work, "lib", f"m{m}.flow")))
    return total + len(main)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flow = os.path.abspath(args[0] if args else "build/flow")
    opt = lambda name, default: next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith(f"--{name}=")), default)
    runs, modules, lines = opt("runs", 11), opt("modules", 20), opt("lines", 5000)
    work = tempfile.mkdtemp(prefix="flow-compile-bench-")
    os.makedirs(os.path.join(work, "lib"))
    total = write_program(work, modules, lines)
    with open(os.path.join(work, "tiny.flow"), "w") as f:
        f.write("print(1)\n")
    cases = {"tiny": "tiny.flow", "one file": "one.flow", "modules": "main.flow"}
    times = {name: [] for name in cases}
    for _ in range(runs):  # interleaved, so that a slow moment of the machine hits all alike
        for name, file in cases.items():
            times[name].append(timed([flow, "check", os.path.join(work, file)]))
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"flow check, median of {runs} runs ({total:,} lines: {modules} modules + the main file):")
    print(f"  {modules} modules      {med['modules']:7.1f} ms   ({med['modules'] - med['tiny']:.1f} ms over the start;"
          f" target <= 100 ms whole)")
    print(f"  one file        {med['one file']:7.1f} ms   ({med['one file'] - med['tiny']:.1f} ms over the start)")
    print(f"  print(1)        {med['tiny']:7.1f} ms   (the process's start)")
    print(f"  modules / one file: {med['modules'] / med['one file']:.2f}x")


if __name__ == "__main__":
    main()
