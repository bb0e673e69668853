#!/usr/bin/env python3
"""Workers on many machines, simulated: three `flow worker` processes on one PostgreSQL
database, each in its own working folder and as its own machine (FLOW_MACHINE_ID, so that
none sees another's processes die and each must wait out a dead one's leases), execute
300 runs of five charges each against a local server; one worker is killed -9 with its
children mid-way. Every run must complete, the server must have applied exactly the
charges of the runs (no completed charge sent again under a new key), and the dead
worker's runs must have moved to the others when their leases ran out."""
import json, os, signal, subprocess, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, check, flow, get_json, main, program, runs, server, store, tmp  # noqa: E402

RUNS = 300
CHARGES = 5
LEASE_MS = 2000


def start_worker(name, env):
    folder = tmp(name)
    os.makedirs(folder)
    p = subprocess.Popen([FLOW, "worker", "--store", store(), "--concurrency", "8", "--json"], cwd=folder,
                         env=dict(env, FLOW_MACHINE_ID=name), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True, start_new_session=True)
    events = []
    threading.Thread(target=lambda: events.extend(json.loads(line) for line in p.stdout), daemon=True).start()
    return p, events


@case
def three_workers_one_killed():
    base = server()
    prog = program("pay.flow", f'''
for i in range({CHARGES}) {{
  http.post("{base}/charge", {{json: {{run: args.n, i: i}}}})
  sleep(20ms)
}}
print("paid")
''')
    env = dict(os.environ, FLOW_LEASE_MS=str(LEASE_MS))
    flow("store", "init", "--store", store())
    for n in range(RUNS):
        r = flow("submit", prog, "--store", store(), "--run-id", f"r{n}", "--arg", f"n={n}", env=env)
        if r.returncode != 0:
            check("a run is submitted", False, r.stderr)
            return
    workers = [start_worker(name, env) for name in ("a", "b", "c")]
    # Kill -9 worker a (its process group: it and its children) once a third is done.
    deadline = time.time() + 120
    while time.time() < deadline and sum(e["event"] == "completed" for _, ev in workers for e in list(ev)) < RUNS // 3:
        time.sleep(0.1)
    killed, killed_events = workers[0]
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    killed_at = time.time()
    time.sleep(0.2)  # its last events read
    # Started by it and not ended as it saw: running when it was killed (or ended by its
    # child a moment before, its result not yet read by it).
    running_at_kill = {e["run"] for e in list(killed_events) if e["event"] == "started"} - \
        {e["run"] for e in list(killed_events) if e["event"] in ("completed", "suspended", "failed")}
    while time.time() < deadline:
        done = [r for r in runs(store()).values() if r["status"] == "completed"]
        if len(done) == RUNS:
            break
        time.sleep(0.5)
    for p, _ in workers[1:]:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    statuses = {k: v["status"] for k, v in runs(store()).items()}
    check(f"all {RUNS} runs complete across a worker's kill -9",
          len(statuses) == RUNS and set(statuses.values()) == {"completed"},
          sorted((k, v) for k, v in statuses.items() if v != "completed")[:10])
    stats = get_json(base + "/stats")
    applied = {k for k in stats["applied"] if k.startswith("r")}
    wanted = {f"r{n}/{2 * i + 1}" for n in range(RUNS) for i in range(CHARGES)}
    check("the server applied exactly the runs' charges, each once: none sent again under a new key",
          applied == wanted, f"{len(applied)} applied, {len(wanted)} wanted; extra {sorted(applied - wanted)[:5]}")
    resent = {k: n for k, n in stats["seen"].items() if k.startswith("r") and n > 1}
    check("only charges in flight at the kill were sent again, with their key",
          len(resent) <= len(running_at_kill), f"{resent} vs {len(running_at_kill)} running at the kill")
    taken_over = set()
    for _, events in workers[1:]:
        taken_over |= {e["run"] for e in events if e["event"] == "started" and e["run"] in running_at_kill}
    check("the killed worker's runs were taken over by the others after their leases ran out",
          taken_over and taken_over <= running_at_kill, f"{sorted(running_at_kill)} vs {sorted(taken_over)}")
    print(f"{len(taken_over)} runs moved; every run done {time.time() - killed_at:.1f} s after the kill")


if __name__ == "__main__":
    main()
