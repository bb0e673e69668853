#!/usr/bin/env python3
"""Circuit breakers shared by every run of a store: 50 runs against a failing local
endpoint (20 one after another, then 30 ten processes at a time) call it at most
`failures` times plus one trial per cooldown period; concurrent processes admit one trial
only; a successful trial closes the breaker for everyone."""
import json, os, subprocess, sys, tempfile, time, urllib.request

FLOW = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import check, failures, finish, start_server  # noqa: E402


server, base = start_server("http_server.py")


def requests():
    return json.load(urllib.request.urlopen(base + "/stats"))["requests"]


try:
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        prog = os.path.join(tmp, "b.flow")
        open(prog, "w").write(f'''
try {{
  breaker "api" (failures: 3, window: 1m, cooldown: 2s) {{
    http.get("{base}/status/500")
  }}
  print("ok")
}} catch e {{
  print(e.kind)
}}
''')
        before = requests()
        start = time.time()
        kinds = []
        for _ in range(20):
            kinds.append(subprocess.run([FLOW, "run", prog, "--store", store], capture_output=True, text=True).stdout.strip())
        for wave in range(3):
            procs = [subprocess.Popen([FLOW, "run", prog, "--store", store], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(10)]
            kinds += [p.communicate(timeout=60)[0].strip() for p in procs]
        calls = requests() - before - 1  # minus our own /stats request
        allowed = 3 + int((time.time() - start) / 2)  # one trial per elapsed cooldown
        check(f"50 runs against a failing endpoint call it at most 3 times (+1 trial per 2 s cooldown)",
              calls <= allowed, f"{calls} calls, {allowed} allowed")
        check("the others fail fast with circuit_open", kinds.count("circuit_open") >= 50 - allowed, kinds)
        time.sleep(2.2)
        before = requests()
        first = subprocess.run([FLOW, "run", prog, "--store", store], capture_output=True, text=True).stdout.strip()
        second = subprocess.run([FLOW, "run", prog, "--store", store], capture_output=True, text=True).stdout.strip()
        calls = requests() - before - 1
        check("after the cooldown one trial goes through, fails, and opens it again",
              first == "http" and second == "circuit_open" and calls == 1, f"{first} {second} {calls}")
        open(prog, "w").write(f'''
print(breaker "api" (failures: 3, window: 1m, cooldown: 2s) {{ http.get("{base}/echo").status }})
''')
        time.sleep(2.2)
        outs = [subprocess.run([FLOW, "run", prog, "--store", store], capture_output=True, text=True).stdout.strip()
                for _ in range(3)]
        check("a successful trial closes the breaker for every run", outs == ["200", "200", "200"], outs)
finally:
    server.kill()
finish()
