#!/usr/bin/env python3
"""Random kill -9 soak: start a run, SIGKILL it at a random moment, resume, again and
again until it finishes; the combined output must be the uninterrupted run's, except that
a line printed just before a kill may appear twice (an effect in flight at a crash runs
again). Short in CI; long by hand: soak.py FLOW random_kills --kills 500.

Usage: soak.py FLOW [random_kills] [--kills N] [--seed S]
"""
import argparse, os, random, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
_options = argparse.ArgumentParser(add_help=False)
_options.add_argument("--kills", type=int, default=25)
_options.add_argument("--seed", type=int, default=int(time.time()))
OPTIONS, sys.argv[1:] = _options.parse_known_args()  # the rest: FLOW and case names, for main()
from testlib import FLOW, case, check, flow, main, program, store  # noqa: E402

PROGRAM = """
let totals = {}
let history = []
fn bump(key, by) {
  let old = totals[key] || 0
  totals[key] = old + by
  return totals[key]
}
for i in range(4000) {
  let v = bump("k${i % 7}", i)
  history.push(v)
  if i % 9 == 0 { print("line", i, v) }
  let t = time.now()
}
let sum = 0
for v in history { sum = sum + v }
print("final", sum, totals)
"""


@case
def random_kills():
    a = OPTIONS
    rng = random.Random(a.seed)
    prog = program("soak.flow", PROGRAM)
    expected = flow("run", prog, "--store", store(), "--run-id", "clean").stdout.splitlines()
    chunks, kills = [], 0
    cmd = [FLOW, "run", prog, "--store", store(), "--run-id", "soak"]
    while True:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if kills < a.kills:
            time.sleep(rng.uniform(0.002, 0.06))
            p.send_signal(signal.SIGKILL)
        out, err = p.communicate(timeout=120)
        chunks.append(out.splitlines())
        if p.returncode == 0:
            break
        if p.returncode != -9 and not (p.returncode == 2 and "no run soak" in err):
            check("each process is killed, finishes, or finds its run not yet started", False, f"exit {p.returncode}: {err}")
            return
        if p.returncode == -9:
            kills += 1
        # Killed before its run record was written, the run does not exist yet: start it again.
        started = os.path.exists(os.path.join(store(), "runs", "soak", "run"))
        cmd = [FLOW, "resume", "soak", "--store", store()] if started else cmd
    # Compare, allowing one repeated line where a process was killed.
    got = []
    for k, chunk in enumerate(chunks):
        if k > 0 and got and chunk and chunk[0] == got[-1]:
            chunk = chunk[1:]
        got += chunk
    first_difference = next((f"line {i + 1}: got {g!r}, expected {e!r}" for i, (g, e) in enumerate(zip(got, expected))
                             if g != e), f"{len(got)} lines, expected {len(expected)}")
    check(f"{kills} kills at random moments (seed {a.seed}), {len(expected)} lines, output identical", got == expected,
          first_difference)


main()
