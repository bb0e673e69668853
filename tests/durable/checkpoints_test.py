#!/usr/bin/env python3
"""Kept checkpoints (issue 11): every past state of a run can be opened (`flow inspect RUN
--at N`), by policy (`--keep-checkpoints all|last|N`), across crashes and resumes, with
long lists stored in chunks and objects freed by the collector."""
import os, re, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import case, folder_store_case, check, crash_then_resume, flow, main, program, store  # noqa: E402

# Effect N (a print) happens with counter = N, size = 30 N and last = 1000 (N - 1) + 29;
# every tenth one first drops 5,000 lists, so that the collector frees objects (tombstones).
SOURCE = '''
let counter = 0
let size = 0
let last = -1
let big = []
let junk = []
for i in range(40) {
  for j in range(30) { big.push(i * 1000 + j) }
  if i % 10 == 0 {
    junk = []
    for k in range(5000) { junk.push([k]) }
  }
  counter = i + 1
  size = len(big)
  last = big[-1]
  print("effect", counter, size, last)
}
'''


def state_at(run_id, n, store_dir):
    r = flow("inspect", run_id, "--store", store_dir, "--at", str(n))
    if r.returncode != 0:
        return None, r
    values = dict(re.findall(r"^  (counter|size|last) = (-?\d+)$", r.stdout, re.M))
    return values, r


def expected(n):
    if n == 0:  # before the first effect: the program's start, before its first `let`
        return {}
    return {"counter": str(n), "size": str(30 * n), "last": str(1000 * (n - 1) + 29)}


def check_states(label, run_id, points, store_dir):
    for n in points:
        values, r = state_at(run_id, n, store_dir)
        check(f"{label}: the state after effect {n} is as it was then", values == expected(n),
              f"{values} {r.stdout[-400:]} {r.stderr}")


@case
def all_kept():
    path = program("kept.flow", SOURCE)
    r = flow("run", path, "--store", store(), "--run-id", "all")
    check("the run completes", r.returncode == 0 and r.stdout.count("effect") == 40, r.stderr)
    check_states("all kept", "all", [0, 1, 2, 9, 10, 11, 25, 39, 40], store())
    r = flow("inspect", "all", "--store", store(), "--at", "41")
    check("a state after an effect the run never made is refused (exit 2)",
          r.returncode == 2 and "no effect 41" in r.stderr, r.stderr)


@folder_store_case
def last_only():
    path = program("kept.flow", SOURCE)
    flow("run", path, "--store", store(), "--run-id", "all")
    r = flow("run", path, "--store", store(), "--run-id", "last", "--keep-checkpoints", "last")
    check("a run keeping its last checkpoint completes", r.returncode == 0, r.stderr)
    check_states("last kept", "last", [40], store())
    values, r = state_at("last", 5, store())
    check("with only the last kept, an earlier state says so and shows the last",
          values == expected(40) and "no longer kept" in r.stderr, r.stderr)
    db = lambda run: sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in
                         os.walk(os.path.join(store(), "runs", run, "db")) for f in fs)
    check("keeping only the last checkpoint takes less room than keeping all", db("last") < db("all"),
          f"{db('last')} vs {db('all')}")


@case
def last_n_across_a_crash():
    """The last 5 are kept, also across a crash and a resume (what was pruned before the
    crash is found again from the change lists left)."""
    path = program("kept.flow", SOURCE)
    _, r = crash_then_resume(path, "five", "17:after-checkpoint", args=("--keep-checkpoints", "5"))
    check("the run killed after effect 17 resumes to its end", r.returncode == 0, r.stderr)
    check_states("the last 5 kept", "five", [36, 37, 40], store())
    values, r = state_at("five", 20, store())
    check("a state before the kept window shows the oldest kept one",
          values == expected(36) and "no longer kept" in r.stderr, f"{values} {r.stderr}")


@case
def all_across_a_crash():
    path = program("kept.flow", SOURCE)
    _, r = crash_then_resume(path, "crashed", "12:after-effect")
    check("the run killed during effect 12 resumes to its end", r.returncode == 0, r.stderr)
    check_states("kept across a crash", "crashed", [3, 11, 12, 13, 40], store())


# About 3 MB of distinct strings built between effects 2 and 3: checkpoint 3 is written in
# batches (StoreJournal::kSplitBytes), and a resume reads the strings only when used.
BIG = '''
let out = args.dir + "/lines.txt"
fs.append(out, "start\\n")
let chunk = "x"
for i in range(10) { chunk = chunk + chunk }
let big = []
for i in range(3000) { big.push(str(i) + chunk) }
fs.append(out, "built\\n")
fs.append(out, big[2999].slice(0, 4) + "\\n")
let total = 0
for s in big { total = total + len(s) }
fs.append(out, "${total}\\n")
print(total)
'''


@case
def a_big_checkpoint_cut_short():
    """Killed between the batches of a big checkpoint: readers see the checkpoint before it,
    the resume drops what the cut one wrote, makes the effect in flight again, and reads
    every string of the big state right."""
    folder = os.path.dirname(program("big.flow", BIG))
    path = os.path.join(folder, "big.flow")
    first = flow("run", path, "--store", store(), "--run-id", "cut", "--arg", f"dir={folder}", crash="2:mid-checkpoint")
    check("the run is killed part way through its big checkpoint", first.returncode == -9,
          f"exit {first.returncode}: {first.stderr}")
    r = flow("inspect", "cut", "--store", store())
    check("inspect reads the last whole checkpoint (before the big one)",
          r.returncode == 0 and "after 1 effects" in r.stdout and "big = null" in r.stdout, r.stdout + r.stderr)
    r = flow("resume", "cut", "--store", store())
    check("the resume completes with every string read right", r.returncode == 0 and r.stdout.strip() == "3082890",
          f"exit {r.returncode}: {r.stdout} {r.stderr}")
    lines = open(os.path.join(folder, "lines.txt")).read().splitlines()
    check("each append is made once (the one in flight at the kill was put back and made again)",
          lines == ["start", "built", "2999", "3082890"], lines)
    r = flow("resume", "cut", "--store", store())
    check("the run is completed", r.returncode != 0 and "completed" in r.stderr, r.stderr)


@case
def bad_values():
    path = program("kept.flow", 'print(1)\n')
    for value in ["0", "-1", "some", "4294967295"]:
        r = flow("run", path, "--store", store(), "--keep-checkpoints", value)
        check(f"--keep-checkpoints {value} is refused (exit 2)", r.returncode == 2 and "keep-checkpoints" in r.stderr,
              r.stderr)


if __name__ == "__main__":
    main()
