#!/usr/bin/env python3
"""Operating runs (issue 11), whole-process figures:
  (a) `flow inspect RUN --at N` on a run of 100,000 effects (every checkpoint kept, the
      default), for N at the start, middle and end, against `flow inspect RUN` (its last
      state) measured in the same run of this script; and the run's database size;
  (b) `flow fork RUN --at N` of that run (to a fork that completes at once: N = the end);
  (c) a run read live (inspect and history back to back from another process) against the
      same run alone.
Bytes per checkpoint with every checkpoint kept against the last only is
`build/bench/durable_bench --only g`.

Usage: python3 bench/operating_bench.py [FLOW_BINARY] [--runs=N] [--effects=N]
       (default build/flow, 7 runs, 100000 effects)"""
import os, statistics, subprocess, sys, tempfile, time

from benchlib import timed


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flow = os.path.abspath(args[0] if args else "build/flow")
    runs = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--runs=")), 7)
    effects = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--effects=")), 100000)
    work = tempfile.mkdtemp(prefix="flow-operating-bench-")
    store = os.path.join(work, "store")
    src = os.path.join(work, "long.flow")
    with open(src, "w") as f:
        f.write(f"let n = 0\nlet seen = []\nfor i in range({effects}) {{\n  n = n + 1\n"
                f"  if i % 100 == 0 {{ seen.push(i) }}\n  time.now()\n}}\nprint(n)\n")
    t = timed([flow, "run", src, "--store", store, "--run-id", "long", "--durability", "async"])
    db = os.path.join(store, "runs", "long", "db")
    size = sum(os.path.getsize(os.path.join(db, f)) for f in os.listdir(db))
    print(f"(a) a run of {effects:,} effects (async, every checkpoint kept): {t / 1000:.1f} s, database "
          f"{size / 1e6:.1f} MB ({size / effects:.0f} bytes per effect)")
    print(f"    whole-process ms, median of {runs} (min-max)")
    points = [("last state", [])] + [(f"--at {n}", ["--at", str(n)]) for n in (1, effects // 2, effects - 1)]
    for label, extra in points:
        times = [timed([flow, "inspect", "long", "--store", store, *extra]) for _ in range(runs)]
        print(f"    inspect {label:<14} {statistics.median(times):7.1f}  ({min(times):.1f}-{max(times):.1f})")
    print("    target: inspect --at N <= 50 ms on a run of 100,000 effects")
    times = [timed([flow, "fork", "long", "--at", str(effects), "--store", store, "--run-id", f"f{i}"])
             for i in range(runs)]
    print(f"(b) fork --at {effects} (made, then run to its end): {statistics.median(times):.1f} ms median "
          f"({min(times):.1f}-{max(times):.1f})")
    # (c) A live run read while it goes: the same run alone, then with a reader taking
    # `flow inspect` and `flow history` of it back to back the whole time.
    steps = max(2000, effects // 20)
    live_src = os.path.join(work, "live.flow")
    with open(live_src, "w") as f:
        f.write(f"let n = 0\nfor i in range({steps}) {{\n  n = n + 1\n  time.now()\n}}\n")
    alone = timed([flow, "run", live_src, "--store", store, "--run-id", "alone"])
    p = subprocess.Popen([flow, "run", live_src, "--store", store, "--run-id", "watched"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    start = time.perf_counter()
    reads = 0
    while p.poll() is None:
        for cmd in ("inspect", "history"):
            if subprocess.run([flow, cmd, "watched", "--store", store], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                reads += 1
    watched = (time.perf_counter() - start) * 1000
    print(f"(c) a run of {steps:,} effects (sync): {alone:.0f} ms alone, {watched:.0f} ms while read {reads} times "
          f"(inspect, history) by another process: {watched / alone:.2f}x")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
