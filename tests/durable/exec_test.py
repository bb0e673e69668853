#!/usr/bin/env python3
"""exec: a timeout kills the child's whole process group; killing flow kills its child.

The children write their pids to a file, and the test looks at (and cleans up) exactly
those processes: never processes found by name, which may be someone else's."""
import os, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, check, flow, main, program, tmp  # noqa: E402


def read_pids(path, count, wait_s=10):
    """The `count` pids written to `path`, waiting for them up to wait_s (a loaded machine)."""
    end = time.monotonic() + wait_s
    while True:
        try:
            pids = [int(x) for x in open(path).read().split()]
        except (FileNotFoundError, ValueError):
            pids = []
        if len(pids) >= count or time.monotonic() > end:
            return pids
        time.sleep(0.05)


def alive(pid, marker):
    """Is process `pid` running, and still the one we started (its command line has `marker`)?"""
    try:
        stat = open(f"/proc/{pid}/stat").read()
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    except OSError:
        return False
    state = stat[stat.rindex(")") + 2]
    # An empty command line: the process is in the middle of an exec.
    return state not in "ZX" and (marker in cmdline or cmdline == "")


def eventually(condition, wait_s=10):
    """True once `condition()` is (polled: processes take a moment to exec, die and be reaped)."""
    end = time.monotonic() + wait_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def gone(pids, marker):
    return eventually(lambda: not any(alive(p, marker) for p in pids))


def kill_leftovers(pids, marker):
    for p in pids:
        if alive(p, marker):
            os.kill(p, signal.SIGKILL)


@case
def timeout_kills_group():
    group_pids = tmp("group.pids")
    # The shell and both sleeps are one process group; each writes its pid first.
    shell = f"echo $$ > {group_pids}; sleep 31.25 & echo $! >> {group_pids}; sleep 31.25 & echo $! >> {group_pids}; wait; echo late"
    prog = program("group.flow", 'try { exec.shell("%s", {timeout: 1s}) } catch e { print(e.kind) }\n' % shell)
    r = flow("run", "--ephemeral", prog, timeout=30)
    pids = read_pids(group_pids, 3)
    check("a timeout kills the whole process group",
          r.stdout == "timeout\n" and len(pids) == 3 and gone(pids, "31.25"), f"{r.stdout}{r.stderr} pids={pids}")
    kill_leftovers(pids, "31.25")


@case
def killed_flow_kills_child():
    child_pid = tmp("child.pid")
    prog = program("orphan.flow", 'exec.run(["sh", "-c", "echo $$ > %s; exec sleep 32.75"])\n' % child_pid)
    p = subprocess.Popen([FLOW, "run", prog, "--store", tmp("s")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pids = read_pids(child_pid, 1)
    # The shell, or the sleep it became.
    started = len(pids) == 1 and eventually(lambda: alive(pids[0], "32.75"))
    p.send_signal(signal.SIGKILL)
    p.wait()
    check("killing flow kills the child it was running", started and gone(pids, "32.75"), f"started={started} pids={pids}")
    kill_leftovers(pids, "32.75")


main()
