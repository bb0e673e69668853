#!/usr/bin/env python3
"""Tasks in durable runs, through the flow command: a run whose tasks all wait suspends
(exit 75) with every timer in its checkpoint; kill -9 with many waits in flight; flow
cancel reaching every task; inspect of a run with tasks."""
import os, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import (FLOW, ROOT, case, check, crash_then_resume, fake_services, flow, get_json, history, main, program,  # noqa: E402
                     record, server, status, store, tmp)


@case
def every_task_waiting_suspends():
    path = program("fan.flow", '''
let ts = []
for i in range(3) {
  ts.push(spawn {
    sleep(300ms * (i + 1))
    i * 10
  })
}
print("spawned")
print(await ts)
''')
    r = flow("run", path, "--store", store(), "--run-id", "fan", "--detach")
    check("a run whose every task waits suspends (exit 75)", r.returncode == 75 and r.stdout == "spawned\n",
          f"{r.returncode} {r.stdout!r} {r.stderr}")
    w = flow("worker", "--once", "--store", store())
    check("it is not due before its earliest timer", "resuming run fan" not in w.stderr, w.stderr)
    time.sleep(0.35)
    w = flow("worker", "--once", "--store", store())
    check("it is due when its earliest timer is (300 ms), not its last (900 ms)", "resuming run fan" in w.stderr, w.stderr)
    check("resumed, every task goes on where it stood", w.stdout == "[0,10,20]\n" and status(store(), "fan") == "completed",
          f"{w.stdout!r} {w.stderr}")
    sleeps = [h for h in history("fan") if h["effect"] == "sleep"]
    check("each task's sleep ran once (its timer was in the checkpoint, not begun again)",
          len(sleeps) == 3 and all(h["state"] == "done" for h in sleeps), str(sleeps))
    keys = sorted(h["idempotency_key"] for h in sleeps)
    check("their keys name the task by spawn position", keys == ["fan/1/1", "fan/2/1", "fan/3/1"], str(keys))


@case
def kill_with_many_waits_in_flight():
    path = program("many.flow", '''
let done = []
let ts = []
for i in range(50) {
  ts.push(spawn {
    sleep(100ms + (i % 7) * 60ms)
    done.push(i)
    i
  })
}
let values = await ts
print(len(done), values[0], values[49])
let total = 0
for v in values { total = total + v }
print(total)
''')
    clean = flow("run", path, "--store", store(), "--run-id", "clean")
    check("uninterrupted, 50 tasks wait at once", clean.returncode == 0 and clean.stdout == "50 0 49\n1225\n",
          clean.stdout + clean.stderr)
    p = subprocess.Popen([FLOW, "run", path, "--store", store(), "--run-id", "killed"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # some timers have fired, most are in flight
    p.send_signal(signal.SIGKILL)
    first, _ = p.communicate()
    r = flow("resume", "killed", "--store", store())
    check("kill -9 with 50 waits in flight, then resume: the output is an uninterrupted run's",
          r.returncode == 0 and first + r.stdout == clean.stdout, f"{first!r} + {r.stdout!r} {r.stderr}")
    sleeps = [h for h in history("killed") if h["effect"] == "sleep"]
    keys = [h["idempotency_key"] for h in sleeps]
    check("every task's wait is done once, under its own key", len(set(keys)) == 50 and
          all(h["state"] == "done" for h in sleeps), f"{len(sleeps)} entries, {len(set(keys))} keys")


@case
def cancel_reaches_every_task():
    path = program("cancel.flow", '''
let ts = []
for i in range(3) {
  ts.push(spawn {
    try { sleep(1h) } catch e { print("task", i, e.kind) }
    i
  })
}
try { await ts } catch e { print("top", e.kind) }
''')
    r = flow("run", path, "--store", store(), "--run-id", "c")
    check("three tasks waiting an hour suspend the run", r.returncode == 75, r.stderr)
    r = flow("cancel", "c", "--store", store())
    lines = sorted(r.stdout.splitlines())
    check("flow cancel raises `cancelled` in every task, the top level's too: each one's catch runs",
          lines == ["task 0 cancelled", "task 1 cancelled", "task 2 cancelled", "top cancelled"] and r.returncode == 0,
          f"{r.returncode} {r.stdout!r} {r.stderr}")
    check("the run ends cancelled", status(store(), "c") == "cancelled", status(store(), "c"))


@case
def unawaited_failure_fails_a_durable_run():
    path = program("lost.flow", '''
let t = spawn {
  sleep(10ms)
  throw error("lost", "nobody awaited me")
}
sleep(50ms)
print("top level done")
''')
    r = flow("run", path, "--store", store(), "--run-id", "lost")
    check("a task that failed unawaited fails the run with its error, naming the task",
          r.returncode == 1 and r.stdout == "top level done\n" and "error: lost: nobody awaited me" in r.stderr and
          "task 1" in r.stderr and status(store(), "lost") == "failed", f"{r.returncode} {r.stdout!r} {r.stderr}")


@case
def inspect_history_and_trace_show_every_task():
    path = program("wait.flow", '''
let seen = "top"
let ts = []
for i in range(2) {
  ts.push(spawn {
    let mine = "task-${i}"
    sleep(1h)
  })
}
let owner = spawn { step "k" { sleep(2h) } }
let twin = spawn { step "k" { 1 } }
let lost = spawn { throw error("oops", "never awaited") }
await ts
''')
    r = flow("run", path, "--store", store(), "--run-id", "w")
    check("suspends", r.returncode == 75, r.stderr)
    r = flow("inspect", "w", "--store", store())
    out = r.stdout
    check("inspect shows the top level where it waits", r.returncode == 0 and 'seen = "top"' in out, out + r.stderr)
    check("inspect lists every task with what it waits for, its frames and locals",
          "task 1: waiting on sleep until" in out and 'mine = "task-0"' in out and 'mine = "task-1"' in out and
          'task 4: blocked on step "k"' in out and "task 5: failed, not awaited: oops: never awaited" in out and
          out.index("task 1:") < out.index("task 2:") < out.index("task 3:"), out)
    entries = history("w")
    tasks = sorted({(h["task"], h["effect"]) for h in entries})
    check("history entries carry their task", tasks == [("1", "sleep"), ("2", "sleep"), ("3", "sleep"), ("3", "step")],
          str(tasks))
    import json as _json
    t = flow("trace", "w", "--store", store())
    events = _json.loads(t.stdout)["traceEvents"]
    names = {e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    tids = {e["tid"] for e in events if e["ph"] == "X"}
    check("trace gives each task its own named track (the run's own on the top level's)",
          set(names) == {"top level", "task 1", "task 2", "task 3"} and
          tids == set(names.values()), str(names) + " " + str(tids))


@case
def transfers_proceed_together_within_the_limit():
    base = server()
    path = program("fan.flow", f'''
let base = "{base}"
let r = parallel (limit: 4) for i in range(12) {{
  http.get("${{base}}/slow/150?i=${{i}}").status
}}
print(r)
let one = http.get("${{base}}/slow/10").json()
print(one.slow)
''')
    r = flow("run", path, "--store", store(), "--run-id", "fan")
    check("12 transfers under parallel (limit: 4) all answer, in order", r.returncode == 0 and
          r.stdout == "[" + ",".join(["200"] * 12) + "]\ntrue\n", r.stdout + r.stderr)
    peak = get_json(base + "/stats").get("slow_peak")
    check("the server saw several at once, never more than the limit (it saw %s)" % peak, peak is not None and 2 <= peak <= 4)
    keys = sorted(h["idempotency_key"] for h in history("fan") if h["effect"] == "http.get")
    want = sorted([f"fan/{i}/1" for i in range(1, 13)] + ["fan/2"])  # the top level's: its 2nd effect
    check("each transfer's key names its task (RUN/PATH/n), the top level's RUN/n", keys == want, str(keys))


@case
def fanout_example():
    """examples/fanout.flow against examples/fake_services.py: uninterrupted, then killed
    with model calls in flight and resumed."""
    example = os.path.join(ROOT, "examples", "fanout.flow")
    expected = "".join(f"PR {101 + i}: {['bug', 'feature', 'docs'][(101 + i) % 3]}\n" for i in range(12))
    expected += '{"docs":4,"bug":4,"feature":4}\n'
    base = fake_services("--llm-delay-ms", "300")
    env = dict(os.environ, GH_API=base, FLOW_LLM_BASE_URL=base)
    r = flow("run", example, "--store", store(), "--run-id", "fan", env=env)
    check("the example triages 12 PRs", r.returncode == 0 and r.stdout == expected, r.stdout + r.stderr)
    stats = get_json(base + "/stats")
    check("at most 4 model calls at once, and more than one (%s)" % stats.get("llm_peak"),
          2 <= stats.get("llm_peak", 0) <= 4 and stats["llm_started"] == 12, str(stats))

    before = stats["llm_started"]  # the same server (one per test process)
    p = subprocess.Popen([FLOW, "run", example, "--store", store(), "--run-id", "killed"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(0.5)  # the first batch answered, the second in flight
    p.send_signal(signal.SIGKILL)
    first, _ = p.communicate()
    r = flow("resume", "killed", "--store", store(), env=env)
    check("killed with model calls in flight, then resumed: the same output", r.returncode == 0 and
          first + r.stdout == expected, f"{first!r} + {r.stdout!r} {r.stderr}")
    calls = get_json(base + "/stats")["llm_started"] - before
    check("no PR whose triage was done is asked again: only the calls in flight at the kill are (%d calls)" % calls,
          12 <= calls <= 16)


SIGNALS = """
let ticks = []
let ticker = spawn {
  for i in range(TICKS) {
    sleep(100ms)
    ticks.push(i)
  }
}
let approver = spawn { signal.wait("approve") }
let timed = spawn {
  try { signal.wait("never", {timeout: 250ms}) } catch e { return "timed out: ${e.kind}" }
}
print(await timed)
print("ticks while waiting", ticks)
print("approved", await approver)
"""


@case
def signal_waits_in_tasks():
    path = program("signals.flow", SIGNALS.replace("TICKS", "3"))
    r = flow("run", path, "--store", store(), "--run-id", "s1")
    check("a task's signal.wait lets the others run; its timeout raises in it alone",
          r.stdout == "timed out: timeout\nticks while waiting [0,1]\n", r.stdout + r.stderr)
    check("when every task waits for a signal, the run suspends (exit 75)", r.returncode == 75 and
          status(store(), "s1") == "suspended", r.stderr)
    i = flow("inspect", "s1", "--store", store())
    check("inspect shows the waiting task at its signal.wait", "signal.wait" in i.stdout, i.stdout)
    flow("signal", "s1", "approve", '{"by": "lee"}', "--store", store())
    r = flow("resume", "s1", "--store", store())
    check("the signal resumes it: the waiting task takes its value", r.returncode == 0 and
          r.stdout == 'approved {"by":"lee"}\n', r.stdout + r.stderr)

    path = program("signals_live.flow", SIGNALS.replace("TICKS", "15"))
    p = subprocess.Popen([FLOW, "run", path, "--store", store(), "--run-id", "s2"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)
    flow("signal", "s2", "approve", "7", "--store", store())
    out, err = p.communicate(timeout=60)
    check("a signal sent while other tasks run is read from the mailbox by the live process (no suspension)",
          p.returncode == 0 and out.endswith("approved 7\n"), f"{p.returncode} {out!r} {err}")


@case
def exec_children_run_side_by_side():
    # Each child waits (up to 5 s) until it sees all four started: run one after another,
    # the first would see itself alone.
    d = tmp("marks")
    os.makedirs(d, exist_ok=True)
    path = program("children.flow", f'''
let r = parallel for i in range(4) {{
  exec.shell("touch {d}/start${{i}}; for k in $(seq 50); do [ $(ls {d} | grep -c start) -ge 4 ] && echo together && exit 0; sleep 0.1; done; echo alone").stdout
}}
print(r)
let cut = spawn {{ timeout 200ms {{ exec.shell("sleep 30") }} }}
try {{ await cut }} catch e {{ print("cut:", e.kind) }}
''')
    r = flow("run", path, "--store", store(), "--run-id", "ex")
    check("four exec children run at once (each saw the others start)", r.returncode == 0 and
          r.stdout.startswith('["together\\n","together\\n","together\\n","together\\n"]'), r.stdout + r.stderr)
    check("a timeout in one task kills its child, and raises there", "cut: timeout" in r.stdout, r.stdout)


@case
def once_step_in_a_task_is_in_doubt_after_a_crash():
    base = server()
    path = program("once.flow", f'''
let base = "{base}"
let other = spawn {{ sleep(50ms); "other done" }}
let pay = spawn {{
  try {{
    step "pay" once {{ http.post("${{base}}/charge", {{json: {{amount: 5}}}}).status }}
  }} catch e {{
    return "in doubt: ${{e.data.step}}"
  }}
}}
print(await [pay, other])
''')
    # Effects: 1 the sleep (task 1), 2 the charge (task 2): killed with the charge in flight.
    first, second = crash_then_resume(path, "once", "2:after-intent")
    check("killed with the once step's call in flight", first.returncode == -9, first.stderr)
    check("resumed, that task's once step raises in_doubt (not run again); the other task goes on",
          second.returncode == 0 and second.stdout == '["in doubt: pay","other done"]\n', second.stdout + second.stderr)
    applied = [k for k in get_json(base + "/stats")["applied"] if k.startswith("once/")]
    check("the charge was not sent again", len(applied) <= 1, str(applied))


@case
def several_effects_in_flight_at_a_crash():
    out = tmp("appended.txt")
    path = program("two.flow", f'''
let a = spawn {{ sleep(50ms); "slept" }}
let b = spawn {{ fs.append("{out}", "once\\n"); "appended" }}
print(await a, await b)
''')
    # Effect 1: task 1's sleep (in flight); effect 2: task 2's append, killed once done.
    first, second = crash_then_resume(path, "two", "2:after-effect")
    check("killed after the append, with the sleep of another task in flight", first.returncode == -9, first.stderr)
    check("resumed: the same output", second.returncode == 0 and second.stdout == "slept appended\n",
          second.stdout + second.stderr)
    check("the append was made once (each effect in flight kept its pre-state, matched by its key)",
          open(out).read() == "once\n", repr(open(out).read()))


@case
def virtual_time_wait_in_flight_at_a_crash():
    path = program("vt.flow", "let t0 = time.now()\nsleep(20s)\nprint(time.now() - t0)\n")
    first, second = crash_then_resume(path, "vt", "2:after-intent", args=("--virtual-time",))
    time.sleep(0.2)
    check("under --virtual-time a sleep in flight at a crash waits its whole time on the run's clock",
          second.returncode == 0 and second.stdout == "20000\n", second.stdout + second.stderr)


@case
def tasks_spawned_in_a_step_keep_their_keys_across_retries():
    base = server()
    path = program("rk.flow", f'''
let n = {{c: 0}}
let r = step "pay" {{
  retry (attempts: 2, backoff: 1ms) {{
    let rs = parallel for x in [1] {{ http.post("{base}/charge", {{json: {{amount: 10}}}}).status }}
    if n.c == 0 {{ n.c = 1; throw error("later", "fails after charging") }}
    rs
  }}
}}
print(r)
''')
    r = flow("run", path, "--store", store(), "--run-id", "rk")
    stats = get_json(base + "/stats")
    seen = {k: v for k, v in stats["seen"].items() if k.startswith("rk/")}
    check("a task spawned in a step is named by the step (KEY:n): the retried charge carries the same key",
          r.returncode == 0 and seen == {"rk/pay:1/1": 2}, f"{seen} {r.stdout} {r.stderr}")
    applied = [k for k in stats["applied"] if k.startswith("rk/")]
    check("and is applied once", applied == ["rk/pay:1/1"], str(applied))


@case
def a_once_step_in_doubt_stays_in_doubt_for_the_task_waiting_for_it():
    out = tmp("paid.txt")
    path = program("on.flow", f'''
fn pay(who) {{
  try {{
    return step "pay" once {{
      sleep(20ms)
      fs.append("{out}", "paid by ${{who}}\\n")
      "ok"
    }}
  }} catch e {{ return "${{who}}:${{e.kind}}" }}
}}
let a = spawn {{ pay("a") }}
let b = spawn {{ sleep(1ms); pay("b") }}
print(await a, await b)
''')
    first, second = crash_then_resume(path, "on", "3:after-effect")  # task a's append, done
    check("both tasks get in_doubt: the waiting one does not run the step again",
          second.returncode == 0 and second.stdout == "a:in_doubt b:in_doubt\n", second.stdout + second.stderr)
    check("paid once", open(out).read() == "paid by a\n", repr(open(out).read()))


main()
