#!/usr/bin/env python3
"""A retried call keeps its idempotency key: inside a step, each attempt of a `retry`
counts the step's effects from where the retry began, and the retry's waits are not
counted, so every attempt of one POST sends the same Idempotency-Key (step{retry{post}},
retry{step{post}}, nested retries, and a crash + resume in the middle of a retry)."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import add_case, case, check, flow, get_json, history, main, program, server, store  # noqa: E402


def run(name, text, crash=None):
    return flow("run", program(name + ".flow", text), "--store", store(), "--run-id", name, "--virtual-time", crash=crash)


def keys(fid):
    return get_json(f"{server()}/keys/{fid}")


@case
def step_retry():
    """step { retry { post } }: the nesting of the README and examples/pr_review.flow."""
    r = run("sr", f'''
let r = step "charge" {{ retry (attempts: 3, backoff: 10ms) {{ http.post("{server()}/flaky/sr/2", {{json: {{amount: 5}}}}).status }} }}
print(r)
''')
    check("step{retry{post}}: the three attempts send one key, RUN/charge/1",
          r.stdout == "200\n" and keys("sr") == ["sr/charge/1"] * 3, f"{keys('sr')} {r.stdout}{r.stderr}")
    hist = history("sr")
    check("the retry's waits are not the step's effects: their keys are RUN/n",
          [(h["effect"], h["idempotency_key"]) for h in hist if h["effect"] in ("http.post", "sleep")] ==
          [("http.post", "sr/charge/1"), ("sleep", "sr/2"), ("http.post", "sr/charge/1"), ("sleep", "sr/4"),
           ("http.post", "sr/charge/1")], hist)


@case
def retry_step():
    r = run("rs", f'''
print(retry (attempts: 3, backoff: 10ms) {{ step "charge" {{ http.post("{server()}/flaky/rs/2").status }} }})
''')
    check("retry{step{post}}: each attempt sends RUN/charge/1",
          r.stdout == "200\n" and keys("rs") == ["rs/charge/1"] * 3, f"{keys('rs')} {r.stdout}{r.stderr}")


@case
def nested_retries():
    """Each attempt restarts the count where its own retry began, and the count goes on
    after a retry that succeeded."""
    base = server()
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


def crash_in_retry(crash, fid):
    """A crash in the middle of the retry: during the wait (effect 2, the first backoff) or
    after the second POST reached the server (effect 3, not checkpointed). The resumed run
    sends the same key again."""
    first = run(fid, f'''
let r = step "charge" {{ retry (attempts: 4, backoff: 10ms) {{ http.post("{server()}/flaky/{fid}/2").status }} }}
print(r)
''', crash=crash)
    second = flow("resume", fid, "--store", store())
    check(f"a crash at {crash} inside the retry, then resume: every attempt sent RUN/charge/1",
          first.returncode == -9 and second.returncode == 0 and second.stdout == "200\n" and
          keys(fid) == [f"{fid}/charge/1"] * len(keys(fid)) and len(keys(fid)) == 3,
          f"{keys(fid)} {second.stdout}{second.stderr}")


add_case("crash_in_wait", crash_in_retry, "2:after-intent", "cw")
add_case("crash_after_post", crash_in_retry, "3:after-effect", "cp")


main()
