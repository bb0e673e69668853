#!/usr/bin/env python3
"""flow worker as a pool of child processes (issue 12): a run that kills its own process
next to good runs (crash isolation, backoff, poisoned), --once's exit code, SIGTERM drain
with nothing repeated, signals and timers waking the worker without polling, --json, and a
kill -9 soak of the worker and its children executing 50 runs against a local server that
counts each idempotency key."""
import json, os, random, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, check, flow, get_json, main, program, runs, server, status, store, tmp  # noqa: E402

# A sanitizer build would catch the SIGSEGV below and exit 1: let it die by the signal, as
# a release build does, so that the checks hold for both.
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "handle_segv=0"]))

# Kills its own flow process with SIGSEGV at its second effect, every time it runs.
SEGFAULT = 'fs.write("${path}", "x")\nexec.run(["sh", "-c", "kill -SEGV $PPID"])\nprint("never")\n'
TIMER = 'let t0 = time.now()\nsleep(300)\nprint("woke", time.now() - t0 >= 300)\n'


def start_worker(*args):
    """A worker in a session of its own (so that a kill of its group takes its children)."""
    return subprocess.Popen([FLOW, "worker", "--store", store(), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(predicate, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def stop_worker(w):
    w.send_signal(signal.SIGTERM)
    try:
        out, err = w.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(w.pid, signal.SIGKILL)
        out, err = w.communicate()
    return w.returncode, out, err


def events(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def segfault_run(run_id):
    p = program("seg.flow", SEGFAULT.replace("${path}", tmp("seg.txt")))
    r = flow("run", p, "--store", store(), "--run-id", run_id)
    return r.returncode == -signal.SIGSEGV and status(store(), run_id) == "crashed", r


@case
def crash_isolation():
    ok, r = segfault_run("seg")
    check("a run that kills its own process with SIGSEGV reads as crashed", ok, f"{r.returncode} {r.stderr}")
    timer = program("timer.flow", TIMER)
    for i in range(3):
        flow("run", timer, "--store", store(), "--run-id", f"good{i}", "--detach")
    w = start_worker("--concurrency", "2", "--max-crashes", "2", "--json")
    done = wait_for(lambda: all(status(store(), f"good{i}") == "completed" for i in range(3))
                    and status(store(), "seg") == "poisoned")
    rc, out, err = stop_worker(w)
    check("the good runs complete and the crashing one is set aside as poisoned", done,
          f"{ {k: v['status'] for k, v in runs(store()).items()} } {err[-2000:]}")
    check("the worker survives its children's crashes and exits 0 on SIGTERM", rc == 0, f"{rc} {err[-2000:]}")
    ev = events(out)
    seg = [e["event"] for e in ev if e.get("run") == "seg"]
    check("the crashing run is started twice, crashes, then is poisoned (never started again)",
          seg == ["started", "crashed", "started", "poisoned"], f"{seg}")
    crashed = next((e for e in ev if e.get("run") == "seg" and e["event"] == "crashed"), {})
    check("a crash says how the child died and when it is retried",
          "signal 11" in crashed.get("detail", "") and crashed.get("retry_in_ms") == 1000 and crashed.get("crashes") == 1,
          f"{crashed}")
    good = [e for e in ev if e.get("run", "").startswith("good") and e["event"] == "completed"]
    check("each good run is reported completed once", len(good) == 3, f"{ev}")
    i = flow("inspect", "seg", "--store", store())
    check("flow inspect shows why the run was set aside and its last stderr",
          "poisoned by a worker" in i.stdout and "2 crashes in a row" in i.stdout and "its last stderr" in i.stdout,
          i.stdout + i.stderr)
    p = flow("runs", "--status", "poisoned", "--store", store())
    check("flow runs --status poisoned lists it", "seg" in p.stdout and "good0" not in p.stdout, p.stdout + p.stderr)
    again = flow("worker", "--once", "--store", store())
    check("a later worker does not start a poisoned run", "seg" not in again.stderr and again.returncode == 0,
          again.stderr)
    r = flow("resume", "seg", "--store", store())
    check("flow resume by hand tries it again (and it crashes again)", r.returncode == -signal.SIGSEGV and
          status(store(), "seg") == "crashed", f"{r.returncode} {status(store(), 'seg')}")


@case
def children_execute_runs_one_after_another():
    """A child executes runs one after another (no process started per run); a run that
    kills its child costs only that child, the next run gets a fresh one; and a child
    executes at most 64 runs, then a fresh one takes over."""
    segfault_run("seg")  # crashed: started first (its process died), before the queued runs
    one = program("one.flow", 'print("ran", args.n)\n')
    for i in range(70):
        r = flow("submit", one, "--store", store(), "--run-id", f"q{i:02d}", "--arg", f"n={i}")
        if r.returncode != 0:
            check("flow submit queues the run", False, r.stderr)
            return
    w = flow("worker", "--once", "--concurrency", "1", "--json", "--store", store(), timeout=120)
    ev = events(w.stdout)
    started = {e["run"]: e["pid"] for e in ev if e["event"] == "started"}
    done = [e["run"] for e in ev if e["event"] == "completed"]
    check("every queued run completes, once", sorted(done) == [f"q{i:02d}" for i in range(70)],
          f"{len(done)} completed; {w.stderr[-1500:]}")
    check("the crashing run was started first and crashed", [e["event"] for e in ev if e.get("run") == "seg"] ==
          ["started", "crashed"], f"{ev[:4]}")
    first, second = {started[f"q{i:02d}"] for i in range(64)}, {started[f"q{i:02d}"] for i in range(64, 70)}
    check("one child executes the first 64 queued runs, and a fresh one the rest",
          len(first) == 1 and len(second) == 1 and first != second, f"{first} {second}")
    check("the child that crashed executes nothing after", started["seg"] not in first | second,
          f"{started['seg']} {first} {second}")
    check("each run prints its line once (--json: on stderr)",
          all(w.stderr.splitlines().count(f"ran {i}") == 1 for i in range(70)), w.stderr[-1500:])


@case
def a_childs_runs_do_not_reach_each_other():
    """What one run does to its process (here: exec's feeding a command ignores SIGPIPE in
    flow) does not change what the next run in the same child sees; and children start
    under a low limit of open files."""
    pipe = program("pipe.flow", 'let r = exec.run(["bash", "-o", "pipefail", "-c", "yes | head -n1 > /dev/null"])\n'
                                'print("code", r.code)\n')
    for i in range(3):
        flow("submit", pipe, "--store", store(), "--run-id", f"p{i}")
    import resource
    low = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # noqa: E731
    w = subprocess.run([FLOW, "worker", "--once", "--concurrency", "1", "--json", "--store", store()],
                       capture_output=True, text=True, timeout=120, preexec_fn=low)
    ev = events(w.stdout)
    pids = {e["pid"] for e in ev if e["event"] == "started"}
    check("the three runs complete in one child, under a limit of 64 open files",
          w.returncode == 0 and len(pids) == 1 and
          sorted(e["run"] for e in ev if e["event"] == "completed") == ["p0", "p1", "p2"], f"{w.returncode} {ev} {w.stderr[-800:]}")
    check("each run's command dies of SIGPIPE (141), as from a shell, whatever ran before it",
          w.stderr.splitlines().count("code 141") == 3, w.stderr[-1500:])


@case
def once_exit_code():
    segfault_run("seg")
    flow("run", program("timer.flow", TIMER), "--store", store(), "--run-id", "good", "--detach")
    time.sleep(0.4)
    w = flow("worker", "--once", "--store", store())
    check("worker --once exits 1 after a pass in which a run's process crashed, the others done",
          w.returncode == 1 and status(store(), "good") == "completed" and status(store(), "seg") == "crashed",
          f"{w.returncode} {w.stderr}")
    check("its line for the crash names the signal", "run seg crashed (killed by signal 11" in w.stderr, w.stderr)
    w = flow("worker", "--once", "--store", store(), "--max-crashes", "1")
    check("with --max-crashes 1 the next crash sets the run aside", w.returncode == 1 and
          status(store(), "seg") == "poisoned", f"{w.returncode} {w.stderr}")


@case
def sigterm_drains():
    out = tmp("lines.txt")
    p = program("long.flow", f'for i in range(300) {{\n  fs.append("{out}", str(i) + "\\n")\n  sleep(10)\n}}\nprint("done")\n')
    r = flow("run", p, "--store", store(), "--run-id", "long", crash="2:after-checkpoint")
    check("the run is killed early, to be taken by the worker", r.returncode == -signal.SIGKILL, f"{r.returncode}")
    w = start_worker()
    started = wait_for(lambda: os.path.exists(out) and len(open(out).read().splitlines()) >= 20, 60)
    rc, _, err = stop_worker(w)
    check("the worker executes the run, and exits 0 once SIGTERM has stopped it", started and rc == 0, f"{rc} {err}")
    rec = runs(store()).get("long", {})
    check("the run stopped as suspended, due at once", rec.get("status") == "suspended", f"{rec} {err}")
    check("the worker said it drained and how the run ended", "draining" in err and "run long suspended" in err, err)
    n = len(open(out).read().splitlines())
    for _ in range(5):
        if status(store(), "long") == "completed":
            break
        flow("resume", "long", "--store", store(), timeout=120)
    lines = open(out).read().splitlines()
    check("resumed to its end, every line was appended exactly once",
          lines == [str(i) for i in range(300)] and n < 300, f"{n} then {len(lines)}: {lines[:5]}...")


@case
def signal_and_timer_wake_the_worker():
    waits = program("waits.flow", 'let v = signal.wait("go")\nprint("got", v)\n')
    flow("run", waits, "--store", store(), "--run-id", "s", "--detach")
    w = start_worker("--json")
    time.sleep(0.3)
    flow("signal", "s", "go", '"yes"', "--store", store())
    done = wait_for(lambda: status(store(), "s") == "completed", 30)
    flow("run", program("timer.flow", TIMER), "--store", store(), "--run-id", "t", "--detach")
    timer_done = wait_for(lambda: status(store(), "t") == "completed", 30)
    rc, out, err = stop_worker(w)
    check("a signal sent to a suspended run wakes a running worker", done, err)
    check("a timer set after the worker started is kept by it", timer_done, err)
    ev = [e for e in events(out) if e.get("run") == "s"]
    check("--json gives one object per change, with its run and detail",
          [e["event"] for e in ev] == ["started", "completed"] and "signal go arrived" in ev[0].get("detail", "")
          and all("time_ms" in e for e in ev), f"{ev}")
    check("with --json the programs' output goes to stderr", "got yes" in err and "got yes" not in out, out + err)


@case
def kill9_soak_50_runs():
    base = server()
    prog = program("pay.flow", f'''
sleep(1)
for i in range(6) {{
  http.post("{base}/charge", {{json: {{run: args.n, i: i}}}})
}}
print("paid")
''')
    for n in range(50):
        flow("run", prog, "--store", store(), "--run-id", f"soak{n}", "--arg", f"n={n}", "--detach")
    rng = random.Random(12)
    kills = 0
    for _ in range(40):
        w = start_worker("--concurrency", "8")
        if kills < 8:
            time.sleep(rng.uniform(0.2, 1.0))
            os.killpg(w.pid, signal.SIGKILL)
            w.communicate()
            kills += 1
            continue
        wait_for(lambda: all(r["status"] == "completed" for r in runs(store()).values()), 120)
        stop_worker(w)
        break
    statuses = {k: v["status"] for k, v in runs(store()).items()}
    check("every run completes across kill -9s of the worker and its children",
          len(statuses) == 50 and set(statuses.values()) == {"completed"} and kills == 8, f"{kills} {statuses}")
    applied = {k: v for k, v in get_json(base + "/stats")["applied"].items() if k.startswith("soak")}
    check("every charge is applied exactly once: 50 runs x 6 keys, none twice",
          len(applied) == 300 and set(applied.values()) == {1}, f"{len(applied)} {sorted(set(applied.values()))}")


if __name__ == "__main__":
    main()
