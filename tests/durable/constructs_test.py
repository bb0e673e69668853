#!/usr/bin/env python3
"""Crashes in the middle of each resilience construct, then resume: a `once` step in
doubt, a completed step not run again, a retry's wait continued rather than restarted,
a timeout's deadline kept absolute, idempotency keys RUN/KEY/n."""
import json, os, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import add_case, case, check, crash_then_resume, flow, get_json, main, program, server, store  # noqa: E402


def once_program():
    return program("once.flow", f'''
let receipt = null
try {{
  receipt = step "charge" once {{
    let r = http.post("{server()}/charge", {{json: {{amount: 5}}}})
    r.status
  }}
}} catch e {{
  print("in doubt:", e.kind)
}}
print("receipt", receipt)
''')


def once_stopped(point):
    # At after-checkpoint the charge and its checkpoint are done, but the step has not finished.
    first, second = crash_then_resume(once_program(), f"once-{point}", f"1:{point}")
    check(f"a once step stopped at {point} raises in_doubt on resume, not a second charge",
          first.returncode == -9 and second.returncode == 0 and second.stdout == "in doubt: in_doubt\nreceipt null\n",
          second.stdout + second.stderr)


for point in ["after-intent", "after-effect", "after-checkpoint"]:
    add_case("once_" + point.replace("-", "_"), once_stopped, point)


@case
def once_clean():
    r = flow("run", once_program(), "--store", store(), "--run-id", "once-clean")
    check("a once step that is not interrupted runs once", r.stdout == "receipt 200\n", r.stdout + r.stderr)


@case
def step_memo():
    base = server()
    memo = program("memo.flow", f'''
let a = step "pay" {{ http.post("{base}/charge", {{json: {{amount: 7}}}}).status }}
let t = time.now()
let b = step "pay" {{ http.post("{base}/charge", {{json: {{amount: 8}}}}).status }}
print(a, b)
''')
    first, second = crash_then_resume(memo, "memo", "2:after-checkpoint")
    stats = get_json(base + "/stats")
    keys = sorted(k for k in stats["seen"] if k.startswith("memo/"))
    check("a completed step is not run again after a crash, and its effect carried RUN/KEY/n",
          second.returncode == 0 and second.stdout == "200 200\n" and keys == ["memo/pay/1"], f"{second.stdout} {keys}")

    hist = json.loads(flow("history", "memo", "--json", "--store", store()).stdout)
    step_rows = [(h["effect"], h["args"]) for h in hist if h["effect"].startswith("step")]
    check("step start and end are history entries, the end with its duration",
          step_rows[:2] == [("step", '["pay"]'), ("step done", '["pay"]')] and
          any(h["effect"] == "step done" and h["duration_us"] >= 0 for h in hist), step_rows)

    trace = json.loads(flow("trace", "memo", "--store", store()).stdout)
    spans = [e for e in trace["traceEvents"] if e["ph"] not in "Mi"]  # M: a track's name; i: an error, a retry
    names = [e["name"] for e in spans]
    check("flow trace gives a Chrome trace of effects and steps",
          "step pay" in names and "http.post" in names and all(e["ph"] == "X" for e in spans), names)


# Waits across a crash. Only the resumed process is timed, against a bound far from both
# answers (the rest of the wait, or the whole wait again), so that a slow build (ASan) or a
# busy machine cannot tip it.
def timed_resume(run_id):
    start = time.time()
    second = flow("resume", run_id, "--store", store())
    return second, time.time() - start


@case
def retry_wait():
    wait = program("wait.flow", '''
let n = 0
let v = retry (attempts: 2, backoff: 3000ms) {
  n = n + 1
  if n == 1 { throw error("flaky", "first") }
  "ok"
}
print(v, n)
''')
    started = time.time()
    flow("run", wait, "--store", store(), "--run-id", "wait", crash="1:after-intent")
    time.sleep(2.0)
    second, took = timed_resume("wait")
    check("a crash in a retry's backoff resumes with the rest of the wait",
          second.stdout == "ok 2\n" and took < 2.5 and time.time() - started >= 2.9,
          f"resume {took:.2f}s {second.stdout}{second.stderr}")


@case
def timeout_deadline():
    deadline = program("deadline.flow", '''
let t0 = time.now()
try {
  timeout 3000ms {
    sleep(300ms)
    print("slept")
    sleep(10s)
  }
} catch e {
  print(e.kind)
}
''')
    started = time.time()
    first = flow("run", deadline, "--store", store(), "--run-id", "deadline", crash="3:after-checkpoint")
    time.sleep(1.5)
    second, took = timed_resume("deadline")
    check("a resumed timeout gets only the time that was left",
          first.stdout == "slept\n" and second.stdout == "timeout\n" and took < 2.4 and time.time() - started >= 2.9,
          f"resume {took:.2f}s {first.stdout!r} {second.stdout!r} {second.stderr}")


@case
def timeout_compute():
    spin = program("spin.flow", '''
let spins = 0
try {
  timeout 3000ms {
    print("start")
    while true { spins = spins + 1 }
  }
} catch e {
  print(e.kind, spins > 0)
}
''')
    flow("run", spin, "--store", store(), "--run-id", "spin", crash="1:after-checkpoint")
    time.sleep(1.5)
    second, took = timed_resume("spin")
    check("pure computation in a resumed timeout stops at the original deadline",
          second.stdout == "timeout true\n" and took < 2.4, f"resume {took:.2f}s {second.stdout!r} {second.stderr}")


@case
def retry_after_429():
    throttled = program("throttled.flow", f'''
let t0 = time.now()
let r = retry (attempts: 5, backoff: 10ms, jitter: "full") {{
  http.get("{server()}/throttle/t1/7/2")
}}
print(r.status, time.now() - t0)
''')
    r = flow("run", throttled, "--store", store(), "--virtual-time")
    check("a 429 with Retry-After sets the retry's wait (7 s twice, on virtual time)",
          r.returncode == 0 and r.stdout == "200 14000\n", r.stdout + r.stderr)


main()
