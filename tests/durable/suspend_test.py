#!/usr/bin/env python3
"""Durable timers, signals, cancel and the worker, through the flow command: runs that
suspend (exit 75) and are continued by `flow resume` or `flow worker`."""
import os, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, check, flow, main, program, status, store  # noqa: E402


def worker():
    return flow("worker", "--once", "--store", store())


def approve_program():
    return program("approve.flow", '''
print("asking")
let answer = signal.wait("approve", {timeout: 1h})
print("answer", answer)
''')


def waits_program():
    return program("waits.flow", '''
try {
  signal.wait("never", {timeout: 500ms})
} catch e {
  print(e.kind)
}
''')


@case
def detached_timer():
    timer = program("timer.flow", 'print("before")\nsleep(1500ms)\nprint("after")\n')
    r = flow("run", timer, "--store", store(), "--run-id", "t", "--detach")
    check("a detached sleep suspends the run with exit 75", r.returncode == 75 and r.stdout == "before\n" and
          status(store(), "t") == "suspended", f"{r.returncode} {r.stdout!r} {r.stderr}")
    w = worker()
    check("the worker leaves a timer that is not due",
          "resuming run t" not in w.stderr and status(store(), "t") == "suspended", w.stderr)
    time.sleep(1.6)
    w = worker()
    check("the worker resumes it once due", w.stdout == "after\n" and status(store(), "t") == "completed",
          w.stdout + w.stderr)


@case
def long_sleep():
    long_sleep = program("long.flow", 'print("start")\nsleep(1h)\nprint("end")\n')
    r = flow("run", long_sleep, "--store", store(), "--run-id", "long")
    check("a sleep longer than the threshold suspends a live run too", r.returncode == 75 and r.stdout == "start\n", r.stderr)
    r = flow("resume", "long", "--store", store())
    check("resuming a timer that is not due suspends it again", r.returncode == 75 and r.stdout == "", r.stderr)


@case
def signal_delivered():
    r = flow("run", approve_program(), "--store", store(), "--run-id", "ap")
    check("signal.wait suspends the run", r.returncode == 75 and status(store(), "ap") == "suspended", r.stderr)
    r = flow("signal", "ap", "approve", '{"ok": true, "by": "lee"}', "--store", store())
    check("flow signal delivers", r.returncode == 0, r.stderr)
    r = flow("signal", "ap", "approve", "{not json", "--store", store())
    check("a signal value that is not JSON is refused", r.returncode == 2, r.stderr)
    w = worker()
    check("the worker resumes the run its signal reached", w.stdout == 'answer {"ok":true,"by":"lee"}\n' and
          status(store(), "ap") == "completed", w.stdout + w.stderr)


@case
def early_signal():
    early = program("early.flow", 'sleep(1s)\nprint("got", signal.wait("go", {timeout: 1h}))\n')
    flow("run", early, "--store", store(), "--run-id", "early", "--detach")
    flow("signal", "early", "go", "42", "--store", store())
    time.sleep(1.1)
    w = worker()
    check("a signal sent before the wait begins is kept for it", w.stdout == "got 42\n", w.stdout + w.stderr)


@case
def wait_timeout_worker():
    r = flow("run", waits_program(), "--store", store(), "--run-id", "to", "--detach")
    check("a wait with a timeout suspends under --detach", r.returncode == 75, r.stderr)
    time.sleep(0.6)
    w = worker()
    check("its timeout raises `timeout` when due", w.stdout == "timeout\n", w.stdout + w.stderr)


@case
def wait_timeout_virtual():
    r = flow("run", waits_program(), "--store", store(), "--run-id", "vt", "--virtual-time")
    check("under --virtual-time a wait with a timeout and no signal times out at once",
          r.returncode == 0 and r.stdout == "timeout\n", r.stdout + r.stderr)


@case
def wait_timeout_live():
    r = flow("run", waits_program(), "--store", store(), "--run-id", "live")
    check("a live process waits out a short timeout itself", r.returncode == 0 and r.stdout == "timeout\n", r.stderr)


@case
def cancel_suspended():
    flow("run", approve_program(), "--store", store(), "--run-id", "cx")
    r = flow("cancel", "cx", "--store", store())
    check("cancelling a suspended run ends it as cancelled", r.returncode == 0 and status(store(), "cx") == "cancelled",
          r.stderr)
    r = flow("resume", "cx", "--store", store())
    check("a cancelled run is never resumed", r.returncode == 2 and "cancelled" in r.stderr, r.stderr)


@case
def cancel_live():
    cleanup = program("cleanup.flow", '''
try {
  sleep(5s)
  print("not reached")
} catch e {
  print("cleanup after", e.kind)
}
''')
    p = subprocess.Popen([FLOW, "run", cleanup, "--store", store(), "--run-id", "lc"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    flow("cancel", "lc", "--store", store())
    out, err = p.communicate(timeout=30)
    check("a live run raises `cancelled` in its wait, and a try can clean up",
          out == "cleanup after cancelled\n" and status(store(), "lc") == "cancelled", out + err)


@case
def crash_while_waiting():
    r = flow("run", approve_program(), "--store", store(), "--run-id", "sigcrash", crash="2:after-intent")
    check("a crash while waiting for a signal", r.returncode == -9 and r.stdout == "asking\n", r.stderr)
    flow("signal", "sigcrash", "approve", '"yes"', "--store", store())
    w = worker()
    check("the worker resumes it and the wait receives the signal",
          w.stdout == "answer yes\n" and status(store(), "sigcrash") == "completed", w.stdout + w.stderr)


@case
def worker_resumes_dead():
    crashy = program("crashy.flow", 'print("one")\nprint("two")\nprint("three")\n')
    flow("run", crashy, "--store", store(), "--run-id", "dead", crash="2:after-checkpoint")
    w = worker()
    check("the worker resumes a run whose process died", w.stdout == "three\n" and status(store(), "dead") == "completed",
          w.stdout + w.stderr)



@case
def run_identity_survives_resume():
    """run.id and run.started_at are the run's: the same after a suspension and resume."""
    prog = program("identity.flow", 'print(run.id, run.started_at)\nsignal.wait("go")\nprint(run.id, run.started_at)\n')
    r1 = flow("run", prog, "--store", store(), "--run-id", "ident")
    check("the run prints its id and start, then suspends", r1.returncode == 75 and r1.stdout.startswith("ident "), r1.stderr)
    flow("signal", "ident", "go", "1", "--store", store())
    r2 = flow("resume", "ident", "--store", store())
    check("resumed (a later process), it prints the same id and start", r2.returncode == 0 and r2.stdout == r1.stdout,
          r1.stdout + " / " + r2.stdout + r2.stderr)

main()
