#!/usr/bin/env python3
"""The PostgreSQL store (issue 14), whole-process figures on a server this script starts
(tests/tools/pg_server.py: 127.0.0.1, fsync on, the data on this machine's disk):
  (a) durable steps per second of one run: N effects (time.now(), each a checkpoint), on
      PostgreSQL with durability sync (synchronous_commit on: each checkpoint's commit
      flushed to the WAL before the next effect) and async (synchronous_commit off), beside
      a folder store measured in the same run;
  (b) 1,000 runs of 10 effects with 4 workers (each its own machine: FLOW_MACHINE_ID, 8
      runs at once): throughput, and the p50/p99 step latency (from one effect's start to
      the next's, in each run's history, 100 runs sampled);
  (c) lease takeover: a run executing under worker A, killed -9 with its children, with
      worker B (another machine) running: from the kill to the run's first effect under B,
      for a lease of FLOW_LEASE_MS (default 2000 here; the product default is 10000);
  (d) a queue capped at 4 across two workers (machines), beside the same runs uncapped:
      throughput, and the most runs executing at once (from their histories).

Usage: python3 bench/pg_bench.py [FLOW_BINARY] [--steps=N] [--runs=N] [--lease-ms=MS] [--queued=N] [--only=abcd]"""
import json, os, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "tools"))
import pg_server  # noqa: E402
from benchlib import run  # noqa: E402


def arg(name, default):
    for a in sys.argv[1:]:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return default


def steps_per_second(flow, work, server, n):
    program = os.path.join(work, "steps.flow")
    with open(program, "w") as f:
        f.write(f"for i in range({n}) {{ let t = time.now() }}\nprint(\"done\")\n")
    print(f"(a) one run of {n} effects (time.now()), each a checkpoint, the whole `flow run`: the first run in a new")
    print("    store, then the median of 3 more in it (a new database's tables grow, and autovacuum runs, during its first)")
    print(f"{'store':<12} {'durability':>10} {'first s':>9} {'steps/s':>9} {'then s':>9} {'steps/s':>9}")
    results = {}
    for store_kind in ("postgresql", "folder"):
        for durability in ("sync", "async"):
            store = server.database(f"a_{durability}") if store_kind == "postgresql" else \
                os.path.join(work, f"folder_{durability}")
            times = []
            for k in range(4):
                start = time.perf_counter()
                run([flow, "run", program, "--store", store, "--durability", durability])
                times.append(time.perf_counter() - start)
            t = sorted(times[1:])[1]
            results[(store_kind, durability)] = n / t
            print(f"{store_kind:<12} {durability:>10} {times[0]:>9.2f} {n / times[0]:>9.0f} {t:>9.2f} {n / t:>9.0f}")
    pg_sync = results[("postgresql", "sync")]
    print(f"PostgreSQL sync: {pg_sync / 530:.1f}x DBOS's 530 steps/s here (target >= 1,000: {'met' if pg_sync >= 1000 else 'NOT met'}); "
          f"folder sync / PostgreSQL sync: {results[('folder', 'sync')] / pg_sync:.2f}\n")


def start_worker(flow, store, machine, env, concurrency=8):
    return subprocess.Popen([flow, "worker", "--store", store, "--concurrency", str(concurrency), "--json"],
                            env=dict(env, FLOW_MACHINE_ID=machine), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)


def runs_of(flow, store):
    return json.loads(run([flow, "runs", "--json", "--store", store]).stdout)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def drain(flow, store, n, machines, label):
    """Starts a worker per machine on STORE and waits until its N runs are completed: seconds."""
    start = time.perf_counter()
    workers = [start_worker(flow, store, f"m{k}", os.environ) for k in range(machines)]
    while True:
        statuses = [r["status"] for r in runs_of(flow, store)]
        if statuses.count("completed") == n:
            break
        if time.perf_counter() - start > 600:
            sys.exit(f"({label}) not done in 600 s: {statuses.count('completed')} of {n}")
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    for w in workers:
        w.send_signal(signal.SIGTERM)
        w.wait()
    return seconds


def submit_runs(flow, store, program, n, *args):
    run([flow, "store", "init", "--store", store])
    for i in range(n):
        run([flow, "submit", program, "--store", store, "--run-id", f"r{i:04d}", *args])


def histories(flow, store, ids):
    return {i: json.loads(run([flow, "history", i, "--json", "--store", store]).stdout) for i in ids}


def many_runs(flow, work, server, n):
    store = server.database("b")
    program = os.path.join(work, "ten.flow")
    with open(program, "w") as f:
        f.write("for i in range(10) { let t = time.now() }\n")
    submit_runs(flow, store, program, n)
    seconds = drain(flow, store, n, 4, "b")
    gaps = []
    for h in histories(flow, store, [f"r{i:04d}" for i in range(0, n, max(1, n // 100))]).values():
        starts = [e["started_us"] for e in h if e["effect"] == "time.now"]
        gaps += [(b - a) / 1000 for a, b in zip(starts, starts[1:])]
    print(f"(b) {n} runs of 10 effects, 4 workers x 8 at once (polled every 0.2 s)")
    print(f"{'seconds':>9} {'runs/s':>9} {'effects/s':>10} {'step p50 ms':>12} {'step p99 ms':>12}")
    print(f"{seconds:>9.2f} {n / seconds:>9.1f} {10 * n / seconds:>10.0f} {percentile(gaps, 50):>12.2f} "
          f"{percentile(gaps, 99):>12.2f}\n")


def capped_queue(flow, work, server, n, cap=4):
    """A queue capped at CAP across two workers (machines), beside the same runs uncapped:
    throughput, and the most runs seen executing at once (from their histories)."""
    program = os.path.join(work, "five.flow")
    with open(program, "w") as f:
        f.write("for i in range(5) { let t = time.now() }\n")
    print(f"(d) {n} runs of 5 effects in one queue, 2 workers x 8 at once: capped at {cap}, and uncapped")
    print(f"{'queue':<10} {'seconds':>9} {'runs/s':>9} {'most at once':>13}")
    for name in ("capped", "uncapped"):
        store = server.database(f"d_{name}")
        submit_runs(flow, store, program, n, "--queue", "q")
        if name == "capped":
            run([flow, "queue", "set", "q", "--concurrency", str(cap), "--store", store])
        seconds = drain(flow, store, n, 2, "d")
        spans = []  # each run's first effect start to its last effect's end, in us
        for h in histories(flow, store, [f"r{i:04d}" for i in range(n)]).values():
            effects = [e for e in h if e["effect"] == "time.now"]
            spans.append((effects[0]["started_us"], max(e["started_us"] + e.get("duration_us", 0) for e in effects)))
        edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
        most = now = 0
        for _, step in edges:
            now += step
            most = max(most, now)
        print(f"{name:<10} {seconds:>9.2f} {n / seconds:>9.1f} {most:>13}")
    print(f"(the capped queue must show at most {cap} at once)\n")


def takeover(flow, work, server, lease_ms, tries=3):
    env = dict(os.environ, FLOW_LEASE_MS=str(lease_ms))
    program = os.path.join(work, "long.flow")
    with open(program, "w") as f:
        f.write("for i in range(100000) { let t = time.now()\n sleep(20ms) }\n")
    print(f"(c) lease takeover, lease {lease_ms} ms: from worker A's kill -9 to the run's first effect under worker B")
    results = []
    for k in range(tries):
        store = server.database(f"c{k}")
        run([flow, "submit", program, "--store", store, "--run-id", "long"], env=env)
        a = start_worker(flow, store, "a", env, 1)
        while not any(r["status"] == "running" for r in runs_of(flow, store)):
            time.sleep(0.05)
        time.sleep(0.5)
        b = start_worker(flow, store, "b", env, 1)
        time.sleep(0.3)
        os.killpg(a.pid, signal.SIGKILL)
        killed_ms = time.time() * 1000
        a.wait()
        first = None
        while first is None and time.time() * 1000 - killed_ms < lease_ms + 30000:
            time.sleep(0.1)
            h = json.loads(run([flow, "history", "long", "--json", "--store", store]).stdout or "[]")
            after = [e["started_ms"] for e in h if e["started_ms"] > killed_ms]
            first = min(after) if after else None
        b.send_signal(signal.SIGTERM)
        b.wait()
        if first is None:
            sys.exit("(c) the run was not taken over")
        results.append(first - killed_ms)
        print(f"  try {k + 1}: {first - killed_ms:.0f} ms")
    med = sorted(results)[len(results) // 2]
    print(f"median {med:.0f} ms = lease {lease_ms} ms + {med - lease_ms:.0f} ms "
          f"(target: <= 2000 ms plus the lease: {'met' if med - lease_ms <= 2000 else 'NOT met'})\n")


def main():
    positional = [a for a in sys.argv[1:] if not a.startswith("--")]
    flow = os.path.abspath(positional[0] if positional else "build/flow")
    only = arg("only", "abcd")
    why = pg_server.available()
    if why:
        sys.exit(why)
    work = tempfile.mkdtemp(prefix="flow-pg-bench-")
    os.chmod(work, 0o755)
    server = pg_server.PgServer(os.path.join(work, "pg")).start()
    try:
        if "a" in only:
            steps_per_second(flow, work, server, int(arg("steps", "2000")))
        if "b" in only:
            many_runs(flow, work, server, int(arg("runs", "1000")))
        if "c" in only:
            takeover(flow, work, server, int(arg("lease-ms", "2000")))
        if "d" in only:
            capped_queue(flow, work, server, int(arg("queued", "300")))
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
