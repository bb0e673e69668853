#!/usr/bin/env python3
"""flow cancel on runs that are not live (suspended in a signal.wait or a durable sleep, or
whose process died): the run raises `cancelled` where it stopped, its handlers run (a saga
compensates), and it ends cancelled."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import case, check, flow, main, program, record, store, tmp  # noqa: E402


@case
def saga():
    log = tmp("saga.log")
    saga = program("saga.flow", f'''
try {{
  fs.append("{log}", "booked\\n")
  let answer = signal.wait("approve")
  fs.append("{log}", "approved\\n")
}} catch e {{
  fs.append("{log}", "compensated ${{e.kind}}\\n")
}}
''')
    r = flow("run", saga, "--store", store(), "--run-id", "saga")
    check("the saga suspends in its signal.wait", r.returncode == 75, r.stderr)
    r = flow("cancel", "saga", "--store", store())
    check("cancelling the suspended saga runs its catch: it compensates",
          r.returncode == 0 and open(log).read() == "booked\ncompensated cancelled\n", r.stderr)
    check("the saga that handled `cancelled` ends cancelled", record(store(), "saga").get("status") == "cancelled",
          record(store(), "saga"))
    r = flow("resume", "saga", "--store", store())
    check("a cancelled saga is never resumed", r.returncode == 2 and open(log).read().count("compensated") == 1,
          r.stderr)


@case
def durable_sleep():
    plain = program("plain.flow", 'print("waiting")\nsleep(1h)\nprint("not reached")\n')
    flow("run", plain, "--store", store(), "--run-id", "plain")
    r = flow("cancel", "plain", "--store", store())
    check("a run without try, suspended in a durable sleep, ends cancelled",
          r.returncode == 0 and "not reached" not in r.stdout and record(store(), "plain").get("status") == "cancelled",
          r.stdout + r.stderr)


@case
def handler_waits():
    """A handler that waits again: the cancel is raised once, recorded with its checkpoint,
    so the resumed handler is not cancelled a second time."""
    twice = program("twice.flow", '''
try {
  signal.wait("a")
} catch e {
  print("caught", e.kind)
  print("got", signal.wait("b"))
}
''')
    flow("run", twice, "--store", store(), "--run-id", "twice")
    r = flow("cancel", "twice", "--store", store())
    check("a handler that waits suspends the cancelled run (exit 75)",
          r.returncode == 75 and r.stdout == "caught cancelled\n" and record(store(), "twice").get("status") == "suspended",
          r.stdout + r.stderr)
    flow("signal", "twice", "b", "7", "--store", store())
    r = flow("resume", "twice", "--store", store())
    check("resumed, its handler gets its signal and is not cancelled again; it ends cancelled",
          r.returncode == 0 and r.stdout == "got 7\n" and record(store(), "twice").get("status") == "cancelled",
          r.stdout + r.stderr)


@case
def failing_compensation():
    """A compensation that fails: the failure shows (failed), not hidden under cancelled."""
    failing = program("failing.flow", '''
try {
  signal.wait("a")
} catch e {
  throw error("compensate", "the refund failed")
}
''')
    flow("run", failing, "--store", store(), "--run-id", "failing")
    r = flow("cancel", "failing", "--store", store())
    check("a compensation that fails leaves the run failed (exit 1)",
          r.returncode == 1 and record(store(), "failing").get("status") == "failed" and "refund failed" in r.stderr,
          r.stdout + r.stderr)


@case
def dead_process():
    """A run whose process died while waiting: cancelled the same way."""
    log = tmp("saga.log.2")
    crashed = program("crashed.flow", f'''
try {{
  fs.append("{log}", "one\\n")
  sleep(5s)
}} catch e {{
  fs.append("{log}", "cleanup ${{e.kind}}\\n")
}}
''')
    flow("run", crashed, "--store", store(), "--run-id", "crashed", crash="2:before-intent")
    r = flow("cancel", "crashed", "--store", store())
    check("a run whose process died runs its handler when cancelled",
          r.returncode == 0 and open(log).read() == "one\ncleanup cancelled\n" and
          record(store(), "crashed").get("status") == "cancelled", r.stdout + r.stderr)


@case
def finally_cleans_up():
    """A `finally` runs when the run is cancelled (with its effects, even one that waits),
    and the run ends cancelled: the error goes on after the block."""
    log = tmp("lock.log")
    locked = program("locked.flow", f'''
try {{
  fs.append("{log}", "locked\\n")
  signal.wait("approve")
  fs.append("{log}", "approved\\n")
}} finally {{
  fs.append("{log}", "released\\n")
}}
print("not reached")
''')
    r = flow("run", locked, "--store", store(), "--run-id", "locked")
    check("the run suspends inside its try", r.returncode == 75, r.stderr)
    r = flow("cancel", "locked", "--store", store())
    check("cancelling it runs its finally block once, and it ends cancelled",
          r.returncode == 0 and open(log).read() == "locked\nreleased\n" and "not reached" not in r.stdout and
          record(store(), "locked").get("status") == "cancelled", r.stdout + r.stderr)


main()
