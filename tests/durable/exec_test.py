#!/usr/bin/env python3
"""exec: a timeout kills the child's whole process group; killing flow kills its child."""
import os, signal, subprocess, sys, tempfile, time

FLOW = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import check, failures, finish, start_server  # noqa: E402


def alive(marker):
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


with tempfile.TemporaryDirectory() as tmp:
    prog = os.path.join(tmp, "group.flow")
    open(prog, "w").write('try { exec.shell("sleep 31.25 & sleep 31.25; echo late", {timeout: 300ms}) } catch e { print(e.kind) }\n')
    r = subprocess.run([FLOW, "run", "--ephemeral", prog], capture_output=True, text=True, timeout=30)
    time.sleep(0.2)
    check("a timeout kills the whole process group", r.stdout == "timeout\n" and not alive("sleep 31.25"),
          r.stdout + r.stderr)

    prog2 = os.path.join(tmp, "orphan.flow")
    open(prog2, "w").write('exec.run(["sleep", "32.75"])\n')
    p = subprocess.Popen([FLOW, "run", prog2, "--store", os.path.join(tmp, "s")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(0.5)
    started = alive("sleep 32.75")
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(0.3)
    check("killing flow kills the child it was running", started and not alive("sleep 32.75"), f"started={started}")
    subprocess.run(["pkill", "-f", "sleep 3[12]"], capture_output=True)

finish()
