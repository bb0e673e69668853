#!/usr/bin/env python3
"""A server's Retry-After is obeyed up to the retry's max_delay (adversarial row 40: a
Retry-After of 999,999,999 s was waited in full, 31.7 years); without max_delay it is
obeyed as sent."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import add_case, check, flow, main, program, server  # noqa: E402


def waited(name, options, tid, after, want):
    path = program(tid + ".flow", f'''let t = time.now()
retry ({options}) {{ http.get("{server()}/throttle/{tid}/{after}/1") }}
print(time.now() - t)
''')
    r = flow("run", path, "--ephemeral", "--virtual-time")
    got = r.stdout.strip() + r.stderr.strip()
    check(name, got == want, got)


add_case("capped", waited, "Retry-After: 999999999 under max_delay: 1s waits 1 s",
         "attempts: 2, backoff: 1ms, max_delay: 1s", "capped", 999999999, "1000")
add_case("under_max_delay", waited, "Retry-After: 5 under max_delay: 1m waits 5 s",
         "attempts: 2, backoff: 1ms, max_delay: 1m", "short", 5, "5000")
add_case("no_max_delay", waited, "Retry-After: 7 without max_delay waits 7 s", "attempts: 2, backoff: 1ms", "free", 7,
         "7000")

main()
