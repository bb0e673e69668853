#!/usr/bin/env python3
"""Many runs on one machine (issue 12), whole-process figures:
  (a) N queued runs (flow submit; default 1000), each one http call to a local server answering in 50 ms and
      its checkpoint, executed by `flow worker --once --concurrency 32`: seconds from the
      worker's start to its exit, against the same with --concurrency 1 on a tenth of the
      runs (scaled to N) measured in the same run of this script;
  (b) timer wake-up latency: runs suspended on staggered timers, one worker: from each
      timer's due time to the worker starting its child (`started` event, --json), and to
      the run's first effect after it (time.now() in the run), p50 and p99.

Usage: python3 bench/worker_bench.py [FLOW_BINARY] [--runs=N] [--timers=N]
       (default build/flow, 1000 runs, 100 timers)"""
import json, os, shutil, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "tests", "tools", "http_server.py")


def start_server():
    p = subprocess.Popen([sys.executable, SERVER], stdout=subprocess.PIPE, text=True)
    return p, "http://127.0.0.1:" + p.stdout.readline().split()[1]


def make_runs(flow, store, program, n, prefix):
    # Queued runs (flow submit), for the worker to start.
    for i in range(n):
        r = subprocess.run([flow, "submit", program, "--store", store, "--run-id", f"{prefix}{i}"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"setup: flow submit exit {r.returncode}: {r.stderr[-300:]}")


def worker_seconds(flow, store, concurrency):
    start = time.perf_counter()
    r = subprocess.run([flow, "worker", "--once", "--concurrency", str(concurrency), "--store", store],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"worker exit {r.returncode}: {r.stderr[-500:]}")
    return seconds


def throughput(flow, work, url, n):
    program = os.path.join(work, "call.flow")
    with open(program, "w") as f:
        f.write(f'http.get("{url}/slow/50")\nprint("done")\n')
    pooled, serial = os.path.join(work, "pooled"), os.path.join(work, "serial")
    make_runs(flow, pooled, program, n, "r")
    make_runs(flow, serial, program, max(1, n // 10), "r")
    time.sleep(0.1)
    t32 = worker_seconds(flow, pooled, 32)
    t1 = worker_seconds(flow, serial, 1) * n / max(1, n // 10)
    print(f"(a) {n} runs, one 50 ms http call and a checkpoint each")
    print(f"{'concurrency':>12} {'seconds':>10} {'runs/s':>10}")
    print(f"{32:>12} {t32:>10.2f} {n / t32:>10.1f}")
    print(f"{1:>12} {t1:>10.2f} {n / t1:>10.1f}   (measured on {max(1, n // 10)} runs, scaled)")
    print(f"ratio 32 vs 1: {t1 / t32:.1f}x faster; target: <= 5 s at 32\n")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def wake_latency(flow, work, n):
    store = os.path.join(work, "timers")
    program = os.path.join(work, "timer.flow")
    with open(program, "w") as f:
        # The due time and the first effect after the wait, both on the run's clock.
        f.write('let d = int(args.delay)\nlet t0 = time.now()\nsleep(d)\nlet t1 = time.now()\n'
                'print("wake", args.id, t0 + d, t1)\n')
    w = subprocess.Popen([flow, "worker", "--json", "--concurrency", "8", "--store", store],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    for i in range(n):
        # Staggered by the time each start takes: due 2 s after it.
        r = subprocess.run([flow, "run", program, "--store", store, "--run-id", f"t{i}", "--detach",
                            "--arg", "delay=2000", "--arg", f"id=t{i}"],
                           capture_output=True, text=True)
        if r.returncode != 75:
            sys.exit(f"setup: exit {r.returncode}: {r.stderr[-300:]}")
    deadline = time.time() + 60 + n * 0.1
    while time.time() < deadline:
        r = subprocess.run([flow, "runs", "--json", "--store", store], capture_output=True, text=True)
        if sum(x["status"] == "completed" for x in json.loads(r.stdout or "[]")) == n:
            break
        time.sleep(0.2)
    w.terminate()
    out, err = w.communicate()
    started = {e["run"]: e["time_ms"] for e in map(json.loads, out.splitlines()) if e.get("event") == "started"}
    due, first = {}, {}
    for line in err.splitlines():
        parts = line.split()
        if "wake" in parts:
            k = parts.index("wake")
            run_id, d, t1 = parts[k + 1], int(parts[k + 2]), int(parts[k + 3])
            due[run_id], first[run_id] = d, t1
    to_start = [started[r] - due[r] for r in due if r in started]
    to_effect = [first[r] - due[r] for r in due]
    if len(to_effect) < n:
        sys.exit(f"only {len(to_effect)} of {n} timers woke")
    print(f"(b) timer wake-up latency, {n} staggered timers, one worker (ms)")
    print(f"{'':>32} {'p50':>8} {'p99':>8}")
    print(f"{'due -> child started':>32} {percentile(to_start, 50):>8} {percentile(to_start, 99):>8}")
    print(f"{'due -> first effect after it':>32} {percentile(to_effect, 50):>8} {percentile(to_effect, 99):>8}")
    print("target: <= 10 / 50 ms\n")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flow = os.path.abspath(args[0] if args else "build/flow")
    n = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--runs=")), 1000)
    timers = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--timers=")), 100)
    work = tempfile.mkdtemp(prefix="flow-worker-bench-")
    server, url = start_server()
    try:
        wake_latency(flow, work, timers)
        throughput(flow, work, url, n)
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
