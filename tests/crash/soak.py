#!/usr/bin/env python3
"""Random kill -9 soak: start a run, SIGKILL it at a random moment, resume, again and
again until it finishes; the combined output must be the uninterrupted run's, except that
a line printed just before a kill may appear twice (an effect in flight at a crash runs
again). Short in CI; long by hand: soak.py FLOW --kills 500.

Usage: soak.py FLOW_BINARY [--kills N] [--seed S]
"""
import argparse, os, random, signal, subprocess, sys, tempfile, time

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("flow")
    ap.add_argument("--kills", type=int, default=25)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    flow = os.path.abspath(a.flow)
    with tempfile.TemporaryDirectory() as tmp:
        prog = os.path.join(tmp, "soak.flow")
        with open(prog, "w") as f:
            f.write(PROGRAM)
        store = os.path.join(tmp, "store")
        clean = subprocess.run([flow, "run", prog, "--store", store, "--run-id", "clean"], capture_output=True, text=True)
        expected = clean.stdout.splitlines()
        chunks, kills = [], 0
        cmd = [flow, "run", prog, "--store", store, "--run-id", "soak"]
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
                print(f"FAIL: exit {p.returncode}: {err}")
                return 1
            if p.returncode == -9:
                kills += 1
            # Killed before its run record was written, the run does not exist yet: start it again.
            started = os.path.exists(os.path.join(store, "runs", "soak", "run"))
            cmd = [flow, "resume", "soak", "--store", store] if started else [flow, "run", prog, "--store", store, "--run-id", "soak"]
        # Compare, allowing one repeated line where a process was killed.
        got = []
        for k, chunk in enumerate(chunks):
            if k > 0 and got and chunk and chunk[0] == got[-1]:
                chunk = chunk[1:]
            got += chunk
        if got != expected:
            for i, (g, e) in enumerate(zip(got, expected)):
                if g != e:
                    print(f"FAIL (seed {a.seed}): line {i + 1}: got {g!r}, expected {e!r}")
                    break
            else:
                print(f"FAIL (seed {a.seed}): {len(got)} lines, expected {len(expected)}")
            return 1
        print(f"soak: {kills} kills at random moments (seed {a.seed}), {len(expected)} lines, output identical")
        return 0


if __name__ == "__main__":
    sys.exit(main())
