#!/usr/bin/env python3
"""A server's Retry-After is obeyed up to the retry's max_delay (adversarial row 40: a
Retry-After of 999,999,999 s was waited in full, 31.7 years); without max_delay it is
obeyed as sent."""
import json, os, subprocess, sys, tempfile

FLOW = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import check, finish, start_server  # noqa: E402

server, base = start_server("http_server.py")
tmp = tempfile.mkdtemp()


def waited(options, tid, after):
    path = os.path.join(tmp, tid + ".flow")
    open(path, "w").write(f'''let t = time.now()
retry ({options}) {{ http.get("{base}/throttle/{tid}/{after}/1") }}
print(time.now() - t)
''')
    r = subprocess.run([FLOW, "run", path, "--ephemeral", "--virtual-time"], capture_output=True, text=True, timeout=60)
    return r.stdout.strip() + r.stderr.strip()


try:
    for name, options, tid, after, want in [
            ("Retry-After: 999999999 under max_delay: 1s waits 1 s", "attempts: 2, backoff: 1ms, max_delay: 1s", "capped",
             999999999, "1000"),
            ("Retry-After: 5 under max_delay: 1m waits 5 s", "attempts: 2, backoff: 1ms, max_delay: 1m", "short", 5, "5000"),
            ("Retry-After: 7 without max_delay waits 7 s", "attempts: 2, backoff: 1ms", "free", 7, "7000")]:
        got = waited(options, tid, after)
        check(name, got == want, got)
finally:
    server.kill()
finish()
