#!/usr/bin/env python3
"""Hostile HTTP input: each misbehaviour ends within its timeout plus a second with a
clear error kind, memory stays bounded, and the run goes on (and finishes)."""
import os, re, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, add_case, case, check, main, program, server, tmp  # noqa: E402

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


def run_hostile(cases):
    """One run that meets each of CASES in turn, then prints "finished": (output lines,
    peak memory in KB)."""
    base = server("hostile_server.py")
    lines = ["let results = []"]
    for path, call, _, _ in cases:
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
    prog = program("hostile.flow", "\n".join(lines))
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb %M", FLOW, "run", prog, "--store", tmp("s")],
                       capture_output=True, text=True, timeout=300)
    return p, int(re.search(r"maxrss_kb (\d+)", p.stderr).group(1))


def check_outcomes(cases, p, rss):
    out = p.stdout.splitlines()
    for (path, _, limit, want), line in zip(cases, out):
        parts = line.split(" ")
        got = " ".join(x for x in parts[1:-1] if x)
        ms = int(parts[-1]) if parts[-1].isdigit() else 10 ** 9
        check(f"{path}: {got} after {ms} ms (expected {want} within {limit + 1000} ms)",
              got == want and ms <= limit + 1000)
    check("the run goes on after every one and finishes", len(out) == len(cases) + 1 and out[-1] == "finished",
          p.stdout[-500:] + p.stderr[-500:])
    check(f"memory stays bounded: {rss // 1024} MB peak (limit 300 MB)", rss < 300 * 1024)


def one(hostile):
    """One misbehaviour alone, so that each is a test of its own."""
    cases = [hostile]
    check_outcomes(cases, *run_hostile(cases))


for hostile in CASES:
    add_case(hostile[0].replace("-", "_"), one, hostile)


@case
def all_in_one_run():
    """Every misbehaviour, one after another, in one run: it goes on after each."""
    check_outcomes(CASES, *run_hostile(CASES))


main()
