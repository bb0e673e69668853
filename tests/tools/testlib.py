"""Helpers shared by the Python end-to-end tests: named checks with one summary line, and
starting the local test servers of tests/tools (each prints `PORT n` first)."""
import os, subprocess, sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


def finish():
    print(f"{'all passed' if not failures else str(len(failures)) + ' failed'}")
    sys.exit(1 if failures else 0)


def start_server(script, *args):
    """Starts tests/tools/SCRIPT (or a path); returns (process, "http://127.0.0.1:PORT")."""
    path = script if os.path.isabs(script) else os.path.join(TOOLS, script)
    p = subprocess.Popen([sys.executable, path, *args], stdout=subprocess.PIPE, text=True)
    return p, "http://127.0.0.1:" + p.stdout.readline().split()[1]
