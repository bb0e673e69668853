#!/usr/bin/env python3
"""flow fork (issue 11): a new run from a kept checkpoint of another, with variables
changed, on the same bytecode; it diverges as a run of its own (its own idempotency keys),
with its origin in its record and history, and the run it came from is untouched."""
import json, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import case, check, flow, history, main, program, record, store, tmp  # noqa: E402

AGENT = '''
let answer = "draft from the model"
let approved = false
let log = []
for i in range(3) {
  log.push("step " + str(i))
  print("working", i)
}
fn finish(a) {
  let verdict = "hold"
  if approved { verdict = "ship" }
  print("answer:", a, "verdict:", verdict, "log:", len(log))
  return verdict
}
print(finish(answer))
'''


@case
def fork_then_diverge():
    path = program("agent.flow", AGENT)
    r = flow("run", path, "--store", store(), "--run-id", "orig")
    check("the original run holds", r.returncode == 0 and "verdict: hold" in r.stdout, r.stderr)
    before = history("orig")
    r = flow("fork", "orig", "--at", "2", "--run-id", "f1", "--set", 'answer="edited"', "--set", "approved=true",
             "--store", store())
    check("the fork runs from after effect 2 with the variables set, and diverges",
          r.returncode == 0 and r.stdout == "working 2\nanswer: edited verdict: ship log: 3\nship\n", r.stdout + r.stderr)
    check("the fork says what it was made from", "made from run orig as it was after effect 2" in r.stderr, r.stderr)
    rec = record(store(), "f1")
    check("its record names its origin",
          rec.get("origin") == {"kind": "fork", "run": "orig", "effect": 2} and rec.get("status") == "completed", rec)
    h = history("f1")
    check("its history has a fork event after the inherited effects",
          [e["effect"] for e in h][2] == "fork" and h[2]["idempotency_key"] == "orig", h[:3])
    keys = [e["idempotency_key"] for e in h if e["effect"] != "fork"]
    check("its history keeps the effects before the fork (the original's keys) and its own after (new keys)",
          keys == ["orig/1", "orig/2", "f1/3", "f1/4", "f1/5"], keys)
    text = flow("history", "f1", "--store", store()).stdout
    check("its text history says where it came from", "made from run orig after its effect 2" in text, text[-300:])
    check("the original run is untouched", history("orig") == before and record(store(), "orig").get("status") == "completed")
    r = flow("fork", "orig", "--store", store(), "--run-id", "f2")
    check("a fork of a completed run's last state completes at once, with nothing to do again",
          r.returncode == 0 and r.stdout == "", r.stdout + r.stderr)


@case
def fork_a_waiting_run():
    """A run waiting for an approval, forked with its draft changed: the fork waits for its
    own signal; the original still waits for its own."""
    path = program("wait.flow", '''
let draft = "v1"
print("drafting", draft)
let decision = signal.wait("approve")
print("draft:", draft, "decision:", decision)
''')
    r = flow("run", path, "--store", store(), "--run-id", "w")
    check("the original suspends waiting for its approval", r.returncode == 75, r.stderr)
    r = flow("fork", "w", "--run-id", "w2", "--set", 'draft="v2"', "--store", store())
    check("the fork suspends in the same wait", r.returncode == 75 and record(store(), "w2").get("status") == "suspended",
          r.stderr)
    flow("signal", "w2", "approve", '"yes"', "--store", store())
    r = flow("resume", "w2", "--store", store())
    check("the fork goes on with its own value and its own signal",
          r.returncode == 0 and r.stdout == "draft: v2 decision: yes\n", r.stdout + r.stderr)
    check("the original still waits", record(store(), "w").get("status") == "suspended", record(store(), "w"))


@case
def set_a_local():
    """--set reaches a local of the innermost frame that has it (a parameter here)."""
    path = program("local.flow", '''
fn work(item) {
  print("first", item)
  print("second", item)
}
work("a")
''')
    flow("run", path, "--store", store(), "--run-id", "loc")
    r = flow("fork", "loc", "--at", "1", "--set", 'item="b"', "--store", store())
    check("the fork's function goes on with its parameter changed", r.returncode == 0 and r.stdout == "second b\n",
          r.stdout + r.stderr)


@case
def history_of_a_fork_before_a_step():
    """The step events after the fork's point are the fork's own, numbered after its fork
    event (a new process once restarted their numbers and overwrote it)."""
    path = program("steps.flow", '''
let rows = step "export" { exec.run(["printf", "4,5,6"]).stdout.split(",") }
let t = 0
print("rows", len(rows))
step "sum" {
  for r in rows { t = t + r }
}
print("total", t)
''')
    r = flow("run", path, "--store", store(), "--run-id", "n")
    check("the original fails adding strings", r.returncode == 1 and "cannot add int and string" in r.stderr, r.stderr)
    r = flow("inspect", "n", "--store", store())
    check("inspect of the failed run shows the error that ended it",
          r.returncode == 0 and "ended by this error" in r.stdout and "cannot add int and string" in r.stdout, r.stdout)
    r = flow("fork", "n", "--at", "2", "--set", "rows=[4,5,6]", "--run-id", "n2", "--store", store())
    check("the fork with ints completes", r.returncode == 0 and r.stdout == "total 15\n", r.stdout + r.stderr)
    effects = [(e["seq"], e["effect"]) for e in history("n2")]
    check("its history: the original's up to effect 2, the fork event, then its own step once",
          effects == [(0, "step"), (1, "exec.run"), (1, "step done"), (2, "print"), (2, "fork"), (2, "step"),
                      (2, "step done"), (3, "print")], effects)
    r = flow("inspect", "n", "--store", store(), "--at", "-1")
    check("a bad --at is one short sentence (exit 2)", r.returncode == 2 and "takes an effect number" in r.stderr
          and len(r.stderr) < 300, r.stderr)


@case
def refusals():
    path = program("agent.flow", AGENT)
    flow("run", path, "--store", store(), "--run-id", "orig")
    flow("run", path, "--store", store(), "--run-id", "lastonly", "--keep-checkpoints", "last")
    cases = {
        "an effect the run never made": (["orig", "--at", "9"], "no effect 9"),
        "a variable the run does not have": (["orig", "--at", "2", "--set", "nope=1"], "no variable `nope`"),
        "a value that is not JSON": (["orig", "--at", "2", "--set", "answer={bad"], "not valid JSON"),
        "a run id already taken": (["orig", "--at", "2", "--run-id", "orig"], "orig"),
        "a checkpoint no longer kept": (["lastonly", "--at", "1"], "no longer keeps"),
        "a run that does not exist": (["nosuch"], "no run nosuch"),
    }
    for what, (args, says) in cases.items():
        r = flow("fork", *args, "--store", store())
        check(f"fork from {what} is refused (exit 2)", r.returncode == 2 and says in r.stderr, r.stderr)
    runs = json.loads(flow("runs", "--json", "--store", store()).stdout)
    check("a refused fork leaves no run behind", sorted(r["id"] for r in runs) == ["lastonly", "orig"], runs)


if __name__ == "__main__":
    main()
