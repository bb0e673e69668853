#!/usr/bin/env python3
"""Compares Flow's retry delays with AWS Step Functions' retry formula: the wait before
retry n (n = 1, 2, ...) is IntervalSeconds * BackoffRate^(n-1), capped at MaxDelaySeconds;
JitterStrategy FULL draws it uniformly from [0, that]. Flow: `backoff`, `factor`,
`max_delay`, `jitter` ("none" or "full"), in ms. Runs under --virtual-time and reads the
waits from time.now() at each attempt."""
import math, os, subprocess, sys, tempfile

FLOW = os.path.abspath(sys.argv[1])

# (IntervalSeconds, BackoffRate, MaxDelaySeconds or None, MaxAttempts + 1 = attempts)
CASES = [(1, 2.0, None, 6), (0.5, 1.5, None, 7), (2, 3.0, 10, 6), (0.25, 2.5, 4, 8), (3, 1.0, None, 4),
         (0.1, 1.7, 0.9, 9)]


def aws_delays(interval, rate, max_delay, attempts):
    out = []
    for n in range(1, attempts):
        d = interval * rate ** (n - 1)
        if max_delay is not None:
            d = min(d, max_delay)
        out.append(d * 1000.0)
    return out


def flow_delays(interval, rate, max_delay, attempts, jitter):
    opts = f"attempts: {attempts}, backoff: {int(interval * 1000)}ms, factor: {rate}, jitter: \"{jitter}\""
    if max_delay is not None:
        opts += f", max_delay: {int(max_delay * 1000)}ms"
    program = f"""
let times = []
try {{
  retry ({opts}) {{
    times.push(time.now())
    throw error("flaky", "always")
  }}
}} catch e {{ }}
let deltas = []
for i in range(1, len(times)) {{ deltas.push(times[i] - times[i - 1]) }}
print(json.encode(deltas))
"""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.flow")
        open(path, "w").write(program)
        p = subprocess.run([FLOW, "run", "--ephemeral", "--virtual-time", path], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"flow failed: {p.stderr}")
        import json
        return json.loads(p.stdout)


failures = 0
for interval, rate, max_delay, attempts in CASES:
    expected = aws_delays(interval, rate, max_delay, attempts)
    got = flow_delays(interval, rate, max_delay, attempts, "none")
    # Flow works in whole milliseconds: it rounds the exact delay, halves up.
    if got != [math.floor(d + 0.5) for d in expected]:
        print(f"FAIL NONE {interval}s x{rate} max {max_delay}: flow {got}, AWS {expected}")
        failures += 1
    else:
        print(f"ok   NONE {interval}s x{rate} max {max_delay}: {got}")
    full = flow_delays(interval, rate, max_delay, attempts, "full")
    if len(full) != len(expected) or any(not (0 <= g <= math.floor(e + 0.5)) for g, e in zip(full, expected)):
        print(f"FAIL FULL {interval}s x{rate} max {max_delay}: flow {full} not within [0, {expected}]")
        failures += 1
    else:
        print(f"ok   FULL {interval}s x{rate} max {max_delay}: {full} within [0, AWS delay]")
print(f"{len(CASES) * 2 - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
