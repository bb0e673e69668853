#!/usr/bin/env python3
"""A retried call keeps its idempotency key: inside a step, each attempt of a `retry`
counts the step's effects from where the retry began, and the retry's waits are not
counted, so every attempt of one POST sends the same Idempotency-Key (step{retry{post}},
retry{step{post}}, nested retries, and a crash + resume in the middle of a retry)."""
import json, os, subprocess, sys, tempfile, urllib.request

FLOW = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import check, finish, start_server  # noqa: E402

server, base = start_server("http_server.py")
tmp = tempfile.mkdtemp()
store = os.path.join(tmp, "store")


def flow(*args, env=None):
    return subprocess.run([FLOW, *args], capture_output=True, text=True, timeout=60, env=env)


def run(name, text, crash=None):
    path = os.path.join(tmp, name + ".flow")
    open(path, "w").write(text)
    env = dict(os.environ, FLOW_CRASH_AT=crash) if crash else None
    return flow("run", path, "--store", store, "--run-id", name, "--virtual-time", env=env)


def keys(fid):
    return json.load(urllib.request.urlopen(f"{base}/keys/{fid}"))


try:
    # step { retry { post } }: the nesting of the README and examples/pr_review.flow.
    r = run("sr", f'''
let r = step "charge" {{ retry (attempts: 3, backoff: 10ms) {{ http.post("{base}/flaky/sr/2", {{json: {{amount: 5}}}}).status }} }}
print(r)
''')
    check("step{retry{post}}: the three attempts send one key, RUN/charge/1",
          r.stdout == "200\n" and keys("sr") == ["sr/charge/1"] * 3, f"{keys('sr')} {r.stdout}{r.stderr}")

    r = run("rs", f'''
print(retry (attempts: 3, backoff: 10ms) {{ step "charge" {{ http.post("{base}/flaky/rs/2").status }} }})
''')
    check("retry{step{post}}: each attempt sends RUN/charge/1",
          r.stdout == "200\n" and keys("rs") == ["rs/charge/1"] * 3, f"{keys('rs')} {r.stdout}{r.stderr}")

    # Nested retries: each attempt restarts the count where its own retry began, and the
    # count goes on after a retry that succeeded.
    r = run("nested", f'''
let out = step "s" {{
  http.post("{base}/flaky/n0/0")
  retry (attempts: 2, backoff: 10ms) {{
    http.post("{base}/flaky/n1/0")
    retry (attempts: 3, backoff: 10ms) {{ http.post("{base}/flaky/n2/2") }}
    http.post("{base}/flaky/n3/1")
  }}
  http.post("{base}/flaky/n4/0").status
}}
print(out)
''')
    got = {f: keys(f) for f in ["n0", "n1", "n2", "n3", "n4"]}
    want = {"n0": ["nested/s/1"], "n1": ["nested/s/2"] * 2, "n2": ["nested/s/3"] * 3 + ["nested/s/3"],
            "n3": ["nested/s/4"] * 2, "n4": ["nested/s/5"]}
    check("nested retries: an outer attempt and an inner one each resend their calls' keys", r.stdout == "200\n" and got == want,
          f"{got} {r.stdout}{r.stderr}")

    # A crash in the middle of the retry: during the wait (effect 2, the first backoff) and
    # after the second POST reached the server (effect 3, not checkpointed). The resumed
    # run sends the same key again.
    for crash, fid in [("2:after-intent", "cw"), ("3:after-effect", "cp")]:
        first = run(fid, f'''
let r = step "charge" {{ retry (attempts: 4, backoff: 10ms) {{ http.post("{base}/flaky/{fid}/2").status }} }}
print(r)
''', crash=crash)
        second = flow("resume", fid, "--store", store)
        check(f"a crash at {crash} inside the retry, then resume: every attempt sent RUN/charge/1",
              first.returncode == -9 and second.returncode == 0 and second.stdout == "200\n" and
              keys(fid) == [f"{fid}/charge/1"] * len(keys(fid)) and len(keys(fid)) == 3,
              f"{keys(fid)} {second.stdout}{second.stderr}")

    hist = json.loads(flow("history", "sr", "--json", "--store", store).stdout)
    check("the retry's waits are not the step's effects: their keys are RUN/n",
          [(h["effect"], h["idempotency_key"]) for h in hist if h["effect"] in ("http.post", "sleep")] ==
          [("http.post", "sr/charge/1"), ("sleep", "sr/2"), ("http.post", "sr/charge/1"), ("sleep", "sr/4"),
           ("http.post", "sr/charge/1")], hist)
finally:
    server.kill()
finish()
