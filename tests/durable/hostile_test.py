#!/usr/bin/env python3
"""Hostile HTTP input: each misbehaviour ends within its timeout plus a second with a
clear error kind, memory stays bounded, and the run goes on (and finishes)."""
import os, re, subprocess, sys, tempfile, time

FLOW = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import start_server  # noqa: E402
server, base = start_server("hostile_server.py")
failures = []

# (path, what the Flow code does, timeout ms, the expected `kind[ reason]`)
CASES = [
    ("drip-headers", "http.get(u, {timeout: 2s})", 2000, "timeout"),
    ("drip-body", "http.get(u, {timeout: 2s})", 2000, "timeout"),
    ("chunked-50mb", "http.get(u, {timeout: 20s})", 20000, "http too_large"),
    ("gzip-bomb", "http.get(u, {timeout: 20s})", 20000, "http too_large"),
    ("lying-length", "http.get(u, {timeout: 5s})", 5000, "http reset"),
    ("reset", "http.get(u, {timeout: 5s})", 5000, "http reset"),
    ("bad-json", "http.get(u).json()", 5000, "json"),
    ("deep-json", "http.get(u).json()", 5000, "json"),
    ("bad-utf8", "http.get(u).json()", 5000, "json"),
    ("redirect-loop", "http.get(u, {timeout: 5s})", 5000, "http redirects"),
]

try:
    with tempfile.TemporaryDirectory() as tmp:
        lines = ["let results = []"]
        for path, call, _, _ in CASES:
            lines.append(f'''
let t_{path.replace("-", "_")} = time.now()
try {{
  let u = "{base}/{path}"
  {call}
  print("{path}", "no error")
}} catch e {{
  print("{path}", e.kind, (e.data || {{}}).reason || "", time.now() - t_{path.replace("-", "_")})
}}''')
        lines.append('print("finished")')
        prog = os.path.join(tmp, "hostile.flow")
        open(prog, "w").write("\n".join(lines))
        start = time.time()
        p = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb %M", FLOW, "run", prog, "--store", os.path.join(tmp, "s")],
                           capture_output=True, text=True, timeout=300)
        took = time.time() - start
        out = p.stdout.splitlines()
        for (path, _, limit, want), line in zip(CASES, out):
            parts = line.split(" ")
            got = " ".join(x for x in parts[1:-1] if x)
            ms = int(parts[-1]) if parts[-1].isdigit() else 10 ** 9
            ok = got == want and ms <= limit + 1000
            print(("ok   " if ok else "FAIL ") + f"{path}: {got} after {ms} ms (expected {want} within {limit + 1000} ms)")
            if not ok:
                failures.append(path)
        if len(out) != len(CASES) + 1 or out[-1] != "finished":
            failures.append("run did not finish")
            print("FAIL the run goes on and finishes:", p.stdout[-500:], p.stderr[-500:])
        else:
            print("ok   the run goes on after every one and finishes")
        rss = int(re.search(r"maxrss_kb (\d+)", p.stderr).group(1))
        ok = rss < 300 * 1024
        print(("ok   " if ok else "FAIL ") + f"memory stays bounded: {rss // 1024} MB peak (limit 300 MB)")
        if not ok:
            failures.append("memory")
finally:
    server.kill()
print(f"{'all passed' if not failures else str(len(failures)) + ' failed'}")
sys.exit(1 if failures else 0)
