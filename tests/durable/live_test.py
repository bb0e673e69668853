#!/usr/bin/env python3
"""Live runs (issue 11, point 5): while a process executes a run, flow runs, inspect,
history, logs, trace and export read it (from a snapshot its process sends over a unix
socket of the abstract namespace), and the run goes on undisturbed."""
import json, os, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, ON_POSTGRES, case, check, flow, main, program, record, store, tmp  # noqa: E402

TICKS = '''
let n = 0
for i in range(60) {
  n = n + 1
  log.info("tick", {n: n})
  sleep(50ms)
}
print("done", n)
'''


def start(path, run_id, store_dir):
    out = open(tmp(run_id + ".out"), "w")
    p = subprocess.Popen([FLOW, "run", path, "--store", store_dir, "--run-id", run_id], stdout=out,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:  # until it has done some effects
        runs = json.loads(flow("runs", "--json", "--store", store_dir).stdout or "[]")
        mine = [r for r in runs if r["id"] == run_id]
        if mine and mine[0]["status"] == "running" and mine[0]["effects"] >= 6:
            return p
        time.sleep(0.05)
    return p


def reads_while_live(store_dir, run_id):
    path = program("ticks.flow", TICKS)
    p = start(path, run_id, store_dir)
    runs = json.loads(flow("runs", "--json", "--store", store_dir).stdout)
    live = [r for r in runs if r["id"] == run_id][0]
    check("flow runs shows the live run running with its effects so far (not the 0 of its record)",
          live["status"] == "running" and 6 <= live["effects"] < 120, live)
    r = flow("inspect", run_id, "--store", store_dir)
    check("inspect reads the live run: its status and a variable as it is now",
          r.returncode == 0 and "status running" in r.stdout and "  n = " in r.stdout, r.stdout + r.stderr)
    r = flow("inspect", run_id, "--store", store_dir, "--at", "2")
    check("inspect --at reads a past state of the live run", r.returncode == 0 and "  n = 1\n" in r.stdout,
          r.stdout + r.stderr)
    r = flow("history", run_id, "--json", "--store", store_dir)
    h = json.loads(r.stdout) if r.returncode == 0 else []
    check("history reads the live run", len(h) >= 6 and h[0]["effect"] == "log.info", r.stderr)
    r = flow("logs", run_id, "--store", store_dir)
    check("logs reads the live run", r.returncode == 0 and "tick n=1\n" in r.stdout, r.stdout + r.stderr)
    r = flow("trace", run_id, "--format", "otlp", "--store", store_dir)
    check("trace reads the live run", r.returncode == 0 and json.loads(r.stdout)["resourceSpans"], r.stderr)
    image = tmp(run_id + ".fvm")
    r = flow("export", run_id, "--store", store_dir, "-o", image)
    check("export packages the live run as it is", r.returncode == 0 and os.path.getsize(image) > 0, r.stderr)
    p.wait(timeout=60)
    check("the run went on undisturbed to its end", p.returncode == 0 and open(tmp(run_id + ".out")).read() == "done 60\n")
    # Completed, the run is packed (docs/checkpoint.md, "Packed runs"): its lock and one file.
    if not ON_POSTGRES:  # a folder store's run: its lock and packed file
        check("it leaves no file behind in its folder", sorted(os.listdir(os.path.join(store_dir, "runs", run_id))) ==
              ["lock", "packed"], os.listdir(os.path.join(store_dir, "runs", run_id)))
    r = flow("inspect", run_id, "--store", store_dir)
    check("a stopped run is read from its database again", r.returncode == 0 and "status completed" in r.stdout, r.stderr)
    return image


@case
def live_reads():
    image = reads_while_live(store(), "lv")
    other = tmp("other-store")
    r = flow("import", image, "--store", other)
    check("the image of a live run imports as a run of its own", r.returncode == 0, r.stderr)
    r = flow("resume", "lv", "--store", other)
    check("which resumes from where the snapshot was to the same end",
          r.returncode == 0 and r.stdout == "done 60\n", r.stdout + r.stderr)


@case
def long_store_path():
    """The socket is named after the run folder, whatever the length of its path."""
    deep = tmp(*(["a-rather-long-folder-name"] * 5), "store")
    check("the store path is longer than a socket path may be", len(os.path.join(deep, "runs", "lv")) > 108, deep)
    reads_while_live(deep, "lv")


@case
def killed_process():
    """A process killed -9: readers see a run that is not live and read its database; the
    resume that takes it over serves it again."""
    path = program("ticks.flow", TICKS)
    p = start(path, "k", store())
    p.kill()
    p.wait()
    r = flow("inspect", "k", "--store", store())
    check("inspect reads the run from its database", r.returncode == 0 and "status crashed" in r.stdout, r.stdout + r.stderr)
    r = flow("resume", "k", "--store", store())
    check("the resumed run completes", r.returncode == 0 and r.stdout == "done 60\n", r.stdout + r.stderr)


if __name__ == "__main__":
    main()
