#!/usr/bin/env python3
"""Circuit breakers shared by every run of a store: 50 runs against a failing local
endpoint (20 one after another, then 30 ten processes at a time) call it at most
`failures` times plus one trial per cooldown period; concurrent processes admit one trial
only; a successful trial closes the breaker for everyone."""
import os, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, check, get_json, main, program, server, store  # noqa: E402


def requests():
    return get_json(server() + "/stats")["requests"]


def breaker_program():
    return program("b.flow", f'''
try {{
  breaker "api" (failures: 3, window: 1m, cooldown: 2s) {{
    http.get("{server()}/status/500")
  }}
  print("ok")
}} catch e {{
  print(e.kind)
}}
''')


def outcome(prog):
    return subprocess.run([FLOW, "run", prog, "--store", store()], capture_output=True, text=True).stdout.strip()


def open_breaker(prog):
    """50 runs against the failing endpoint: (calls it received, calls allowed, each run's outcome)."""
    before = requests()
    start = time.time()
    kinds = [outcome(prog) for _ in range(20)]
    for wave in range(3):
        procs = [subprocess.Popen([FLOW, "run", prog, "--store", store()], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(10)]
        kinds += [p.communicate(timeout=60)[0].strip() for p in procs]
    calls = requests() - before - 1  # minus our own /stats request
    return calls, 3 + int((time.time() - start) / 2), kinds  # one trial per elapsed cooldown


@case
def opens():
    calls, allowed, kinds = open_breaker(breaker_program())
    check(f"50 runs against a failing endpoint call it at most 3 times (+1 trial per 2 s cooldown)",
          calls <= allowed, f"{calls} calls, {allowed} allowed")
    check("the others fail fast with circuit_open", kinds.count("circuit_open") >= 50 - allowed, kinds)


@case
def trial():
    prog = breaker_program()
    for _ in range(4):  # three failures open it; the fourth run finds it open
        outcome(prog)
    time.sleep(2.2)
    before = requests()
    first, second = outcome(prog), outcome(prog)
    calls = requests() - before - 1
    check("after the cooldown one trial goes through, fails, and opens it again",
          first == "http" and second == "circuit_open" and calls == 1, f"{first} {second} {calls}")
    program("b.flow", f'''
print(breaker "api" (failures: 3, window: 1m, cooldown: 2s) {{ http.get("{server()}/echo").status }})
''')
    time.sleep(2.2)
    outs = [outcome(prog) for _ in range(3)]
    check("a successful trial closes the breaker for every run", outs == ["200", "200", "200"], outs)


main()
