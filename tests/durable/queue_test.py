#!/usr/bin/env python3
"""Issue 12, queued runs: flow submit creates a run `queued` and returns at once; flow
resume (by hand) or a worker starts it from the beginning with its stored arguments; flow
queue set Q --concurrency N caps how many runs of Q execute at once across every process
on the store (two `flow worker` processes against a local server that counts requests in
flight: the most in flight is the cap, and without a cap the two workers do overlap)."""
import json, os, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, check, flow, get_json, main, program, runs, server, status, store, tmp  # noqa: E402

DEFERRED = 76  # flow resume of a run whose queue is full (cli/exit_codes.h)


def inflight():
    return server("inflight_server.py")


def hold_program(until):
    """A run that makes one request to /hold/TAG?ms=MS (args.tag, args.ms) and prints what it got."""
    return program("hold.flow", f'''
let r = http.get("{inflight()}/hold/${{args.tag}}?until={until}&ms=${{args.ms}}")
print("held", json.parse(r.body).tag)
''')


def submit(path, *args):
    return flow("submit", path, "--store", store(), *args)


@case
def submit_then_worker():
    prog = program("hello.flow", 'print("hello", args.who)\n')
    r = submit(prog, "--arg", "who=queue", "--run-id", "q1")
    check("flow submit prints the run id and returns at once (exit 0)", r.returncode == 0 and r.stdout.strip() == "q1",
          (r.returncode, r.stdout, r.stderr))
    check("the program did not run", "hello" not in r.stdout, r.stdout)
    check("flow runs shows it queued", status(store(), "q1") == "queued", runs(store()))
    listed = flow("runs", "--status", "queued", "--store", store())
    check("flow runs --status queued lists it", listed.returncode == 0 and "q1" in listed.stdout, listed.stdout + listed.stderr)
    check("its queue is default", runs(store())["q1"].get("queue") == "default", runs(store())["q1"])
    w = flow("worker", "--once", "--store", store())
    check("flow worker --once starts it, with its stored arguments", "hello queue" in w.stdout, (w.stdout, w.stderr))
    check("then it is completed", status(store(), "q1") == "completed", runs(store()))
    again = flow("worker", "--once", "--store", store())
    check("a second pass runs it no more", "hello" not in again.stdout, again.stdout)


@case
def resume_starts_queued():
    prog = program("count.flow", 'print("start", args.n)\nsleep(10ms)\nprint("end", args.n)\n')
    rid = submit(prog, "--arg", "n=7").stdout.strip()
    r = flow("resume", rid, "--store", store())
    check("flow resume of a queued run starts it from the beginning", r.returncode == 0 and r.stdout == "start 7\nend 7\n",
          (r.returncode, r.stdout, r.stderr))
    again = flow("resume", rid, "--store", store())
    check("once it has run, resume says there is nothing to resume (exit 2)", again.returncode == 2, again.stderr)
    bad = flow("submit", prog, "--store", store(), "--run-id", rid)
    check("a taken run id is refused (exit 2)", bad.returncode == 2 and "already exists" in bad.stderr, bad.stderr)
    syntax = flow("submit", program("bad.flow", "let = 1\n"), "--store", store())
    check("a program with errors is not submitted (exit 2)", syntax.returncode == 2, syntax.stderr)


@case
def readers_of_queued():
    rid = submit(program("p.flow", 'print("ran")\n')).stdout.strip()
    for command in ("inspect", "history", "logs", "trace", "export"):
        r = flow(command, rid, "--store", store())
        check(f"flow {command} of a queued run says it has not started (exit 2, not damage)",
              r.returncode == 2 and "is queued: it has not started" in r.stderr, (r.returncode, r.stderr))


@case
def cancel_queued():
    rid = submit(program("p.flow", 'print("ran")\n')).stdout.strip()
    c = flow("cancel", rid, "--store", store())
    check("flow cancel of a queued run ends it cancelled (exit 0)", c.returncode == 0 and status(store(), rid) == "cancelled",
          (c.returncode, c.stderr, runs(store())))
    w = flow("worker", "--once", "--store", store())
    check("the worker never starts it", "ran" not in w.stdout, w.stdout)


@case
def full_queue_by_hand():
    prog = hold_program(until=99)
    check("flow queue set caps a queue", flow("queue", "set", "one", "--concurrency", "1", "--store", store()).returncode == 0)
    a = submit(prog, "--queue", "one", "--arg", "tag=a", "--arg", "ms=5000", "--run-id", "a").stdout.strip()
    b = submit(prog, "--queue", "one", "--arg", "tag=b", "--arg", "ms=10", "--run-id", "b").stdout.strip()
    first = subprocess.Popen([FLOW, "resume", a, "--store", store()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while status(store(), a) != "running" and time.time() < deadline:
        time.sleep(0.05)
    r = flow("resume", b, "--store", store())
    check("resuming a second run of a queue capped at 1 says the queue is full (exit 76)",
          r.returncode == DEFERRED and "queue one is full" in r.stderr, (r.returncode, r.stderr))
    check("and leaves it queued", status(store(), b) == "queued", runs(store()))
    listed = json.loads(flow("queue", "list", "--json", "--store", store()).stdout)
    check("flow queue list shows the cap, the run executing and the one queued",
          {"name": "one", "concurrency": 1, "executing": 1, "queued": 1} in listed, listed)
    first.communicate(timeout=60)
    r = flow("resume", b, "--store", store())
    check("once the first has ended, it starts", r.returncode == 0 and "held b" in r.stdout, (r.returncode, r.stderr))
    unset = flow("queue", "set", "one", "--unlimited", "--store", store())
    listed = json.loads(flow("queue", "list", "--json", "--store", store()).stdout)
    check("--unlimited removes the cap", unset.returncode == 0 and not any(q["name"] == "one" for q in listed), listed)
    both = flow("queue", "set", "one", "--store", store())
    check("queue set without --concurrency or --unlimited is a usage error", both.returncode == 2, both.stderr)


@case
def suspended_run_holds_no_slot():
    flow("queue", "set", "one", "--concurrency", "1", "--store", store())
    waiter = program("wait.flow", 'print("waiting")\nsignal.wait("go")\nprint("went")\n')
    submit(waiter, "--queue", "one", "--run-id", "a")
    submit(program("hello.flow", 'print("hello")\n'), "--queue", "one", "--run-id", "b")
    w = flow("worker", "--once", "--store", store())
    check("in a queue capped at 1, a run that suspends frees its slot: the next one runs",
          status(store(), "a") == "suspended" and status(store(), "b") == "completed", (w.stderr, runs(store())))
    flow("signal", "a", "go", "--store", store())
    w = flow("worker", "--once", "--store", store())
    check("the suspended run takes a slot again to go on, and ends", status(store(), "a") == "completed" and
          "went" in w.stdout, (w.stdout, w.stderr))


@case
def killed_while_starting():
    """A queued run killed at its first effects resumes as any run: nothing done twice."""
    log = tmp("effects.log")
    prog = program("files.flow", f'''
fs.append("{log}", "one\\n")
fs.append("{log}", "two\\n")
print("done")
''')
    submit(prog, "--run-id", "k")
    first = flow("resume", "k", "--store", store(), crash="2:after-checkpoint")
    check("the start was killed (SIGKILL)", first.returncode == -9, (first.returncode, first.stderr))
    check("it reads as crashed, no longer queued", status(store(), "k") == "crashed", runs(store()))
    w = flow("worker", "--once", "--store", store())
    with open(log) as f:
        lines = f.read().split()
    check("the worker resumes it to its end, each effect done once", status(store(), "k") == "completed" and
          lines == ["one", "two"], (w.stderr, lines))


def drain_with_two_workers(queue, tags):
    """Starts two `flow worker` processes on the store, waits until the runs are completed,
    stops them; returns the server's stats."""
    get_json(inflight() + "/reset")
    workers = [subprocess.Popen([FLOW, "worker", "--store", store()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(2)]
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            states = runs(store())
            if all(states.get(f"{queue}-{t}", {}).get("status") == "completed" for t in tags):
                break
            time.sleep(0.2)
    finally:
        for w in workers:
            w.kill()
            w.wait()
    return get_json(inflight() + "/stats"), runs(store())


@case
def cap_across_two_workers():
    tags = ["r1", "r2", "r3", "r4"]
    # Each request waits until 2 are in flight at once, or 1.5 s (5 s without a cap).
    prog = hold_program(until=2)
    flow("queue", "set", "capped", "--concurrency", "1", "--store", store())
    for t in tags:
        submit(prog, "--queue", "capped", "--arg", f"tag={t}", "--arg", "ms=1500", "--run-id", f"capped-{t}")
    stats, states = drain_with_two_workers("capped", tags)
    check("two workers ran every run of the queue", all(states[f"capped-{t}"]["status"] == "completed" for t in tags),
          {k: v["status"] for k, v in states.items()})
    check("each made its request once", stats["done"] == {t: 1 for t in tags}, stats)
    check("never more requests in flight than the cap (1)", stats["max_in_flight"] == 1, stats)
    # The same with no cap: the two workers do run two at once, so the check above can fail.
    for t in tags[:2]:
        submit(prog, "--queue", "free", "--arg", f"tag={t}", "--arg", "ms=5000", "--run-id", f"free-{t}")
    stats, states = drain_with_two_workers("free", tags[:2])
    check("without a cap, two workers have 2 requests in flight at once", stats["max_in_flight"] == 2, stats)


main()
