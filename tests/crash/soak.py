#!/usr/bin/env python3
"""Random kill -9 soak: start a run, SIGKILL it at a random moment, resume, again and
again until it finishes; the combined output must be the uninterrupted run's, except that
a line printed just before a kill may appear twice (an effect in flight at a crash runs
again). Short in CI; long by hand: soak.py FLOW random_kills --kills 500.

The second case, tasks_in_flight, kills a fan-out with 50 http calls in flight at once
(parallel for, a local server that answers slowly and counts each idempotency key) and
requires every call applied exactly once and the output of an uninterrupted run.

Usage: soak.py FLOW [random_kills|tasks_in_flight] [--kills N] [--seed S]
"""
import argparse, os, random, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
_options = argparse.ArgumentParser(add_help=False)
_options.add_argument("--kills", type=int, default=25)
_options.add_argument("--seed", type=int, default=int(time.time()))
OPTIONS, sys.argv[1:] = _options.parse_known_args()  # the rest: FLOW and case names, for main()
from testlib import FLOW, case, check, flow, get_json, history, main, program, record, server, store  # noqa: E402

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


def kill_until_done(cmd, kills_wanted, rng, low, high):
    """Runs cmd, SIGKILLs it after a random moment in [low, high] s, resumes the run, again,
    until it finishes after `kills_wanted` kills. Returns (the output lines, one repeated
    line at each kill dropped; the kills), or (None, kills) after a check failed."""
    chunks, kills, pids = [], 0, []
    while True:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pids.append(p.pid)
        if kills < kills_wanted:
            time.sleep(rng.uniform(low, high))
            p.send_signal(signal.SIGKILL)
        out, err = p.communicate(timeout=120)
        chunks.append(out.splitlines())
        if p.returncode == 0:
            break
        if p.returncode != -9 and not (p.returncode == 2 and "no run soak" in err):
            check("each process is killed, finishes, or finds its run not yet started", False,
                  f"exit {p.returncode}: {err} (pids, the last this one's: {pids[-4:]})")
            return None, kills
        kills += p.returncode == -9
        # Killed before its run record was written, the run does not exist yet: start it again.
        started = bool(record(store(), "soak"))
        cmd = [FLOW, "resume", "soak", "--store", store()] if started else cmd
    # Compare, allowing one repeated line where a process was killed.
    got = []
    for k, chunk in enumerate(chunks):
        if k > 0 and got and chunk and chunk[0] == got[-1]:
            chunk = chunk[1:]
        got += chunk
    return got, kills


@case
def random_kills():
    a = OPTIONS
    rng = random.Random(a.seed)
    prog = program("soak.flow", PROGRAM)
    expected = flow("run", prog, "--store", store(), "--run-id", "clean").stdout.splitlines()
    got, kills = kill_until_done([FLOW, "run", prog, "--store", store(), "--run-id", "soak"], a.kills, rng, 0.002, 0.06)
    if got is None:
        return
    first_difference = next((f"line {i + 1}: got {g!r}, expected {e!r}" for i, (g, e) in enumerate(zip(got, expected))
                             if g != e), f"{len(got)} lines, expected {len(expected)}")
    check(f"{kills} kills at random moments (seed {a.seed}), {len(expected)} lines, output identical", got == expected,
          first_difference)


FANOUT = """
let base = args.base
let rounds = []
for round in range(3) {
  let got = parallel (limit: 50) for i in range(50) {
    let r = http.post("${base}/charge/slow", {json: {amount: round * 100 + i}, timeout: 10s})
    json.parse(r.body).charged.amount
  }
  let sum = 0
  for v in got { sum = sum + v }
  rounds.push(sum)
  print("round", round, sum)
}
print("done", rounds)
"""


@case
def tasks_in_flight():
    a = OPTIONS
    rng = random.Random(a.seed)
    base = server()
    prog = program("fanout.flow", FANOUT)
    common = ["--store", store(), "--arg", f"base={base}"]
    clean = flow("run", prog, "--run-id", "clean", *common)
    expected = clean.stdout.splitlines()
    check("uninterrupted, 150 calls in rounds of 50 in flight", clean.returncode == 0 and len(expected) == 4,
          clean.stdout + clean.stderr)
    got, kills = kill_until_done([FLOW, "run", prog, "--run-id", "soak", *common], max(3, a.kills // 5), rng, 0.01, 0.15)
    if got is None:
        return
    check(f"{kills} kills with up to 50 calls in flight (seed {a.seed}): output identical", got == expected,
          f"{got} != {expected}")
    applied = [k for k in get_json(base + "/stats")["applied"] if k.startswith("soak/")]
    check(f"each of the 150 calls applied exactly once ({len(applied)} keys)", len(applied) == 150 and
          len(set(applied)) == 150)
    keys = {h["idempotency_key"] for h in history("soak") if h["effect"] == "http.post" and h["state"] == "done"}
    check("each call done once in the history, under its task's key", len(keys) == 150, str(len(keys)))


main()
