#!/usr/bin/env python3
"""flow rerun (issue 11, point 3): a new run of a failed run's program, or of a fixed file,
with its arguments, in which every step the old run completed returns its stored value
without running. A local server counts requests per Idempotency-Key, so a step's effect
done again would show."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import case, check, flow, get_json, history, main, program, server, store, tmp  # noqa: E402


def stats():
    return get_json(f"{server()}/stats")


def keys(fid):
    return get_json(f"{server()}/keys/{fid}")


def buggy(base, tag, fixed):
    """Charges a card in step "charge", then reviews in step "review", which has a bug
    (indexing a field the answer does not have) unless `fixed`."""
    review = 'resp.json().key' if fixed else 'resp.json().missing.field'
    return f'''
let amount = int(args.amount)
let charged = step "charge" {{
  http.post("{base}/charge", {{json: {{amount: amount, tag: "{tag}-charge"}}}}).json().n
}}
print("charged", amount)
let review = step "review" {{
  let resp = http.post("{base}/charge", {{json: {{tag: "{tag}-review"}}}})
  {review}
}}
print("review", review)
'''


@case
def rerun_after_fix_does_not_repeat_completed_steps():
    base = server()
    path = program("pay.flow", buggy(base, "fix", fixed=False))
    first = flow("run", path, "--store", store(), "--run-id", "pay", "--arg", "amount=7")
    check("the buggy run fails in step review", first.returncode == 1 and "charged 7" in first.stdout and
          "review" not in first.stdout, first.stdout + first.stderr)
    before = stats()
    check("the old run charged once", before["applied"].get("pay/charge/1") == 1, before)
    # The fix: the review step reads a field the answer has.
    program("pay.flow", buggy(base, "fix", fixed=True))
    again = flow("rerun", "pay", "--code", path, "--store", store(), "--run-id", "pay2")
    after = stats()
    check("the rerun completes with the fix live", again.returncode == 0 and "review pay/review/1" in again.stdout,
          again.stdout + again.stderr)
    check("it keeps the arguments of the old run", "charged 7" in again.stdout, again.stdout)
    check("the completed step's effect is not done again: no request for it came",
          after["seen"].get("pay/charge/1") == 1 and "pay2/charge/1" not in after["seen"], after["seen"])
    check("the fixed step did run: its request came again, with the same idempotency key (the same logical call)",
          after["seen"].get("pay/review/1") == 2 and after["applied"].get("pay/review/1") == 1, after["seen"])
    check("the rerun says what it reused", "reruns run pay: 1 completed step(s) reused (charge)" in again.stderr,
          again.stderr)
    hist = history("pay2")
    events = [(h["effect"], h["idempotency_key"]) for h in hist]
    check("history names the origin first: a rerun of run pay, with the code hash",
          events and events[0] == ("rerun", "pay") and "rerun of run pay on code" in hist[0]["result"], hist[:2])
    check("the reused step shows as reused from the old run, not as an effect",
          ("step reused", "charge") in events and "run pay" in next(h["result"] for h in hist if h["effect"] == "step reused")
          and [e for e in events if e[0] == "http.post"] == [("http.post", "pay/review/1")], events)
    runs = {r["id"]: r for r in __import__("json").loads(flow("runs", "--json", "--store", store()).stdout)}
    check("the new run's record names the fixed file as its program", runs["pay2"]["program"] == path, runs.get("pay2"))
    check("flow runs --json names its origin", runs["pay2"].get("origin") == {"kind": "rerun", "run": "pay"}
          and "origin" not in runs["pay"], runs)
    shown = flow("inspect", "pay2", "--store", store()).stdout
    check("flow inspect names its origin and its code", "rerun of run pay (1 completed step(s) reused)" in shown
          and f"code {runs['pay2']['code_hash']} (its source stored with it)" in shown, shown)


@case
def rerun_reuses_a_step_completed_after_the_last_effect():
    """A step that completes after the run's last effect is in no checkpoint: the steps a
    run had when it ended are kept for this (key `f`)."""
    base = server()
    path = program("late.flow", f'''
let rows = step "export" {{ http.post("{base}/flaky/late/0").status }}
let total = step "sum" {{ rows + 1 }}
print(total + "!")
''')
    first = flow("run", path, "--store", store(), "--run-id", "late")
    check("the run fails after its last effect", first.returncode == 1 and "error: type" in first.stderr, first.stderr)
    program("late.flow", f'''
let rows = step "export" {{ http.post("{base}/flaky/late/0").status }}
let total = step "sum" {{ rows + 1 }}
print("${{total}}!")
''')
    again = flow("rerun", "late", "--code", path, "--store", store(), "--run-id", "late2")
    check("the rerun completes", again.returncode == 0 and again.stdout == "201!\n", again.stdout + again.stderr)
    check("both steps were reused, the export not requested again",
          "2 completed step(s) reused (export, sum)" in again.stderr and keys("late") == ["late/export/1"],
          again.stderr + str(keys("late")))


@case
def rerun_same_code_after_an_outage():
    """The step failed on a transient outage (503): a rerun on the same code carries on."""
    base = server()
    path = program("outage.flow", f'''
let a = step "first" {{ http.post("{base}/charge", {{json: {{tag: "outage-first"}}}}).json().n }}
let b = step "second" {{ http.post("{base}/flaky/outage/1").status }}
print("done", b)
''')
    first = flow("run", path, "--store", store(), "--run-id", "out")
    check("the run fails on the outage", first.returncode == 1 and "error: http" in first.stderr, first.stderr)
    resumed = flow("resume", "out", "--store", store())
    check("flow resume refuses a failed run and names flow rerun",
          resumed.returncode == 2 and "flow rerun out" in resumed.stderr, resumed.stderr)
    again = flow("rerun", "out", "--store", store(), "--run-id", "out2")
    check("the rerun on the stored code completes", again.returncode == 0 and again.stdout == "done 200\n",
          again.stdout + again.stderr)
    check("step first was not run again", stats()["seen"].get("out/first/1") == 1, stats()["seen"])
    check("step second ran again with the old run's key", keys("outage") == ["out/second/1", "out/second/1"], keys("outage"))


@case
def rerun_with_changed_program():
    """--code with a program that changed shape: new steps run, the old ones' values come back."""
    path = program("v1.flow", '''
let a = step "a" { random.int(1, 1000000000) }
print("a", a)
throw error("bug", "v1 is broken")
''')
    first = flow("run", path, "--store", store(), "--run-id", "v1")
    a = first.stdout.split()[1] if first.stdout.startswith("a ") else None
    v2 = program("v2.flow", '''
print("v2 starts")
let a = step "a" { random.int(1, 1000000000) }
let b = step "b" { a * 2 }
print("a", a, "b", b)
''')
    again = flow("rerun", "v1", "--code", v2, "--store", store(), "--run-id", "v2")
    check("the rerun runs the new program", again.returncode == 0 and again.stdout.startswith("v2 starts\n"),
          again.stdout + again.stderr)
    check("step a returns the old run's value (its random draw is not made again)",
          a is not None and f"a {a} b {int(a) * 2}" in again.stdout, (a, again.stdout))
    hist = history("v2")
    check("no random.int effect in the rerun", not any(h["effect"] == "random.int" for h in hist), hist)
    resumed_code = flow("inspect", "v2", "--store", store())
    check("the new run's record is on the new code", "v2.flow" in resumed_code.stdout, resumed_code.stdout)


@case
def rerun_step_holding_a_function_runs_again():
    path = program("fnstep.flow", '''
let f = step "make" { print("making"); fn(x) { return x + 1 } }
let n = step "n" { 41 }
print(f(n))
throw error("bug", "stop")
''')
    flow("run", path, "--store", store(), "--run-id", "fn1")
    again = flow("rerun", "fn1", "--store", store(), "--run-id", "fn2")
    check("the step whose value is a function runs again, and says why",
          again.stdout.startswith("making\n42\n") and 'step "make" runs again: its value holds a function' in again.stderr,
          again.stdout + again.stderr)
    check("the data step is reused", "1 completed step(s) reused (n)" in again.stderr, again.stderr)


@case
def rerun_of_a_rerun_keeps_the_first_runs_keys():
    base = server()
    path = program("chain.flow", f'''
let a = step "a" {{ http.post("{base}/flaky/chain/0").status }}
let b = step "b" {{ http.post("{base}/flaky/chainb/5").status }}
''')
    flow("run", path, "--store", store(), "--run-id", "c1")
    flow("rerun", "c1", "--store", store(), "--run-id", "c2")
    flow("rerun", "c2", "--store", store(), "--run-id", "c3")
    check("step a ran once across the chain", keys("chain") == ["c1/a/1"], keys("chain"))
    check("step b carried c1's key in every rerun", keys("chainb") == ["c1/b/1"] * 3, keys("chainb"))


@case
def a_rerun_that_suspends_keeps_its_keys_when_resumed():
    base = server()
    path = program("wait.flow", f'''
let a = step "a" {{ http.post("{base}/flaky/wa/0").status }}
let ok = signal.wait("go")
let b = step "b" {{ http.post("{base}/flaky/wb/0").status }}
print(a, b, ok)
throw error("bug", "fails after b")
''')
    flow("run", path, "--store", store(), "--run-id", "w1")
    flow("signal", "w1", "go", "true", "--store", store())
    flow("resume", "w1", "--store", store())
    program("wait.flow", f'''
let a = step "a" {{ http.post("{base}/flaky/wa/0").status }}
let ok = signal.wait("go")
let c = step "c" {{ http.post("{base}/flaky/wc/0").status }}
let b = step "b" {{ http.post("{base}/flaky/wb/0").status }}
print(a, b, c, ok)
''')
    first = flow("rerun", "w1", "--code", path, "--store", store(), "--run-id", "w2")
    check("the rerun suspends on its own signal wait", first.returncode == 75, first.stderr)
    flow("signal", "w2", "go", "true", "--store", store())
    done = flow("resume", "w2", "--store", store())
    check("resumed, it completes", done.returncode == 0 and done.stdout == "200 200 200 true\n", done.stdout + done.stderr)
    check("steps a and b were not requested again; the new step c carries w1's key",
          keys("wa") == ["w1/a/1"] and keys("wb") == ["w1/b/1"] and keys("wc") == ["w1/c/1"],
          (keys("wa"), keys("wb"), keys("wc")))
    reused = [h["idempotency_key"] for h in history("w2") if h["effect"] == "step reused"]
    check("each reused step shows once, across the resume", reused == ["a", "b"], reused)


@case
def rerun_refuses_a_run_that_has_not_ended():
    path = program("s.flow", 'signal.wait("go")\n')
    flow("run", path, "--store", store(), "--run-id", "s1")
    r = flow("rerun", "s1", "--store", store())
    check("a suspended run is refused: resume it, or cancel it and rerun",
          r.returncode == 2 and "flow resume s1" in r.stderr and "flow cancel s1" in r.stderr, r.stderr)


@case
def reused_values_keep_their_types():
    """Floats stay floats, ints ints; lists, maps, errors (kind, message, data) and shared
    parts come back as they were."""
    path = program("types.flow", '''
let v = step "data" {
  let shared = [1, "x", null, true, -9223372036854775807]
  {f: 6.0, g: 0.1, i: 7, l: shared, again: shared, m: {k: {deep: [2.5]}}, e: error("kind", "msg", {d: 1}), s: "caf\u00e9"}
}
print(v)
print(type(v.f), type(v.i), v.e.kind, v.e.message, v.e.data.d)
throw error("bug", "stop")
''')
    first = flow("run", path, "--store", store(), "--run-id", "ty1")
    again = flow("rerun", "ty1", "--store", store(), "--run-id", "ty2")
    check("the reused value prints as the original did", "1 completed step(s) reused (data)" in again.stderr and
          first.stdout != "" and again.stdout == first.stdout and "float int kind msg 1" in again.stdout,
          first.stdout + "\n---\n" + again.stdout + again.stderr)


@case
def a_once_step_in_doubt_stays_in_doubt():
    """A `once` step found in doubt raised in_doubt and failed the run (no checkpoint after
    it): the rerun does not run it again either."""
    path = program("once.flow", '''step "pay" once { print("paying") }
print("after")
''')
    flow("run", path, "--store", store(), "--run-id", "o1", crash="1:after-effect")
    resumed = flow("resume", "o1", "--store", store())
    check("the resume raises in_doubt", "error: in_doubt" in resumed.stderr, resumed.stderr)
    again = flow("rerun", "o1", "--store", store(), "--run-id", "o2")
    check("the rerun raises in_doubt too, and does not pay again",
          again.returncode == 1 and "paying" not in again.stdout and "error: in_doubt" in again.stderr
          and '`once` step "pay" stays in doubt' in again.stderr, again.stdout + again.stderr)


@case
def rerun_refuses_an_unknown_run():
    r = flow("rerun", "nope", "--store", store())
    check("an unknown run is a usage error", r.returncode == 2 and "nope" in r.stderr, r.stderr)


if __name__ == "__main__":
    main()
