#!/usr/bin/env python3
"""Crash matrix: for each program of tests/crash/*.flow (a case each, named by the file),
kill the VM (FLOW_CRASH_AT=K:POINT, SIGKILL) at every point of every effect, resume, and
require the combined output to equal an uninterrupted run's. A local HTTP server checks
that each idempotency key was applied exactly once.

The one allowed difference: a crash at after-effect of a `print` (the line is out, its
checkpoint is not) repeats that one line, because an effect in flight at a crash runs
again (the durability contract); the test requires exactly that line, once more."""
import glob, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from testlib import add_case, check, flow, get_json, history, main, start_server, store, tmp  # noqa: E402

ALL_POINTS = ["before-intent", "after-intent", "after-effect", "after-checkpoint"]
# FLOW_CRASH_POINTS=a,b: only those (the sanitizer build runs the two in-flight points, the
# release build all four: tests/CMakeLists.txt).
POINTS = os.environ["FLOW_CRASH_POINTS"].split(",") if os.environ.get("FLOW_CRASH_POINTS") else ALL_POINTS
assert set(POINTS) <= set(ALL_POINTS), f"FLOW_CRASH_POINTS: unknown point in {POINTS}"


def check_program(program):
    name = os.path.basename(program)
    server, base = start_server("http_server.py")  # its own, so that its counts are this program's alone
    env = dict(os.environ, FLOW_TEST_VALUE="from-env")
    store_dir = store()
    common = ["--store", store_dir, "--arg", f"base={base}", "--arg", f"dir={tmp()}"]
    clean = flow("run", program, "--run-id", "clean", *common, env=env, cwd=tmp())
    if not check(f"{name}: the uninterrupted run succeeds", clean.returncode == 0, clean.stderr):
        return
    expected = clean.stdout.splitlines()
    clean_history = [h for h in history("clean", store_dir) if h["effect"] not in ("step", "step done")]
    effects = [h["effect"] for h in clean_history]
    # Each effect's key without the run id: RUN/n, RUN/2.5/n in a task, RUN/KEY/n in a step.
    key_of = [h["idempotency_key"][len("clean/"):] for h in clean_history]
    print(f"{name}: {len(effects)} effects x {len(POINTS)} crash points")
    http_runs = {}  # run id -> (number of http.post effects, seq of the http.post in flight at the crash, if any)
    cases = 0  # each crash is checked, but only a failure is printed (there are hundreds)
    for k in range(1, len(effects) + 1):
        for point in POINTS:
            run_id = f"k{k}-{point}"
            crashed = flow("run", program, "--run-id", run_id, *common, env=env, crash=f"{k}:{point}", cwd=tmp())
            if crashed.returncode != -9:
                check(f"{name} {run_id}: killed by SIGKILL", False, f"exit {crashed.returncode}: {crashed.stderr}")
                continue
            resumed = flow("resume", run_id, "--store", store_dir, env=env, cwd=tmp())
            if resumed.returncode != 0:
                check(f"{name} {run_id}: resumes", False, f"exit {resumed.returncode}: {resumed.stderr}")
                continue
            got = crashed.stdout.splitlines() + resumed.stdout.splitlines()
            want = list(expected)
            if point == "after-effect" and effects[k - 1] == "print":
                printed_before = effects[:k].count("print")
                want.insert(printed_before, expected[printed_before - 1])
            if got != want:
                check(f"{name} {run_id}: the output is the uninterrupted run's", False, f"{got} != expected {want}")
            if "http.post" in effects:
                resent = point == "after-effect" and effects[k - 1] == "http.post"
                http_runs[run_id] = (effects.count("http.post"), key_of[k - 1] if resent else None)
            cases += 1
    check(f"{name}: {cases} crashes resumed", cases > 0)
    stats = get_json(base + "/stats")
    for run_id, (posts, in_flight) in http_runs.items():
        applied = [k for k in stats["applied"] if k.startswith(run_id + "/")]
        if len(applied) != posts:
            check(f"{name} {run_id}: each charge applied once", False, f"{len(applied)} applied, expected {posts}: {applied}")
        if in_flight is not None:
            key = f"{run_id}/{in_flight}"
            if stats["seen"].get(key) != 2:
                check(f"{name} {run_id}: the in-flight charge {key} sent again with the same key", False,
                      f"sent {stats['seen'].get(key)} times, expected twice")
    server.kill()


for path in sorted(glob.glob(os.path.join(HERE, "*.flow"))):
    add_case(os.path.splitext(os.path.basename(path))[0], check_program, path)

main()
