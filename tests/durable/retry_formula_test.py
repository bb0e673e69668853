#!/usr/bin/env python3
"""Compares Flow's retry delays with AWS Step Functions' retry formula: the wait before
retry n (n = 1, 2, ...) is IntervalSeconds * BackoffRate^(n-1), capped at MaxDelaySeconds;
JitterStrategy FULL draws it uniformly from [0, that]. Flow: `backoff`, `factor`,
`max_delay`, `jitter` ("none" or "full"), in ms. Runs under --virtual-time and reads the
waits from time.now() at each attempt."""
import json, math, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import add_case, check, flow, main, program  # noqa: E402

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
    path = program("r.flow", f"""
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
""")
    p = flow("run", "--ephemeral", "--virtual-time", path)
    if p.returncode != 0:
        raise RuntimeError(f"flow failed: {p.stderr}")
    return json.loads(p.stdout)


def compare(interval, rate, max_delay, attempts):
    expected = aws_delays(interval, rate, max_delay, attempts)
    got = flow_delays(interval, rate, max_delay, attempts, "none")
    # Flow works in whole milliseconds: it rounds the exact delay, halves up.
    check(f"NONE {interval}s x{rate} max {max_delay}: {got}", got == [math.floor(d + 0.5) for d in expected],
          f"AWS {expected}")
    full = flow_delays(interval, rate, max_delay, attempts, "full")
    check(f"FULL {interval}s x{rate} max {max_delay}: {full} within [0, AWS delay]",
          len(full) == len(expected) and all(0 <= g <= math.floor(e + 0.5) for g, e in zip(full, expected)),
          f"not within [0, {expected}]")


for row in CASES:
    interval, rate, max_delay, _ = row
    name = f"backoff_{int(interval * 1000)}ms_factor_{rate}_max_{max_delay}".replace(".", "_").lower()
    add_case(name, compare, *row)

main()
