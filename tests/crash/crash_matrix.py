#!/usr/bin/env python3
"""Crash matrix: for each program, kill the VM (FLOW_CRASH_AT=K:POINT, SIGKILL) at every
point of every effect, resume, and require the combined output to equal an uninterrupted
run's. A local HTTP server checks that each idempotency key was applied exactly once.

The one allowed difference: a crash at after-effect of a `print` (the line is out, its
checkpoint is not) repeats that one line, because an effect in flight at a crash runs
again (the durability contract); the test requires exactly that line, once more.

Usage: crash_matrix.py FLOW_BINARY PROGRAM.flow...
"""
import json, os, subprocess, sys, tempfile, urllib.request

FLOW = os.path.abspath(sys.argv[1])
POINTS = ["before-intent", "after-intent", "after-effect", "after-checkpoint"]
failures = []


def flow(*args, env=None, cwd=None):
    return subprocess.run([FLOW, *args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd)


def start_server():
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.Popen([sys.executable, os.path.join(here, "..", "tools", "http_server.py")],
                         stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    return p, f"http://127.0.0.1:{port}"


# run id -> (number of http.post effects, seq of the effect that was in flight at a crash, if an http.post)
http_runs = {}


def main():
    server, base = start_server()
    try:
        for program in sys.argv[2:]:
            check_program(os.path.abspath(program), base)
        stats = json.load(urllib.request.urlopen(base + "/stats"))
        for run_id, (posts, in_flight) in http_runs.items():
            applied = [k for k in stats["applied"] if k.startswith(run_id + "/")]
            if len(applied) != posts:
                failures.append(f"{run_id}: {len(applied)} charges applied, expected {posts}: {applied}")
            if in_flight is not None:
                key = f"{run_id}/{in_flight}"
                if stats["seen"].get(key) != 2:
                    failures.append(f"{run_id}: the in-flight charge {key} was sent {stats['seen'].get(key)} times, "
                                    "expected twice with the same key")
    finally:
        server.kill()
    for f in failures:
        print("FAIL", f)
    print(f"crash matrix: {'all passed' if not failures else str(len(failures)) + ' failed'}")
    return 1 if failures else 0


def check_program(program, base):
    name = os.path.basename(program)
    env = dict(os.environ, FLOW_TEST_VALUE="from-env")
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        common = ["--store", store, "--arg", f"base={base}", "--arg", f"dir={tmp}"]
        clean = flow("run", program, "--run-id", "clean", *common, env=env, cwd=tmp)
        if clean.returncode != 0:
            failures.append(f"{name}: uninterrupted run failed: {clean.stderr}")
            return
        expected = clean.stdout.splitlines()
        history = json.loads(flow("history", "clean", "--json", "--store", store).stdout)
        effects = [h["effect"] for h in history]
        print(f"{name}: {len(effects)} effects x {len(POINTS)} crash points")
        cases = 0
        for k in range(1, len(effects) + 1):
            for point in POINTS:
                run_id = f"k{k}-{point}"
                crashed = flow("run", program, "--run-id", run_id, *common,
                               env=dict(env, FLOW_CRASH_AT=f"{k}:{point}"), cwd=tmp)
                if crashed.returncode != -9:
                    failures.append(f"{name} {run_id}: expected SIGKILL, got exit {crashed.returncode}: {crashed.stderr}")
                    continue
                resumed = flow("resume", run_id, "--store", store, env=env, cwd=tmp)
                if resumed.returncode != 0:
                    failures.append(f"{name} {run_id}: resume exit {resumed.returncode}: {resumed.stderr}")
                    continue
                got = crashed.stdout.splitlines() + resumed.stdout.splitlines()
                want = list(expected)
                if point == "after-effect" and effects[k - 1] == "print":
                    printed_before = effects[:k].count("print")
                    want.insert(printed_before, expected[printed_before - 1])
                if got != want:
                    failures.append(f"{name} {run_id}: output {got} != expected {want}")
                if "http.post" in effects:
                    resent = point == "after-effect" and effects[k - 1] == "http.post"
                    http_runs[run_id] = (effects.count("http.post"), k if resent else None)
                cases += 1
        print(f"{name}: {cases} crashes resumed")


if __name__ == "__main__":
    sys.exit(main())
