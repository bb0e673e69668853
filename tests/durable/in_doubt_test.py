#!/usr/bin/env python3
"""`in_doubt` says where: killed inside a `once` step (FLOW_CRASH_AT), the resumed run
raises in_doubt with data {step: KEY, line: N} and a message naming the step; `flow
history` marks the effect that was in flight as in_doubt (text and --json); and what the
handler does next (a compensation) is a new effect with a key of its own, not the key of
the charge in doubt."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import case, check, crash_then_resume, flow, history, main, program, server, store  # noqa: E402


def charge_program():
    base = server()
    return program("charge.flow", f'''let order = args.order
try {{
  step "charge-${{order}}" once {{
    print("charging")
    http.post("{base}/charge", {{json: {{amount: 5}}}})
  }}
}} catch e {{
  print(e.kind, e.data.step, e.data.line)
  print(e.message)
  let refund = http.post("{base}/charge", {{json: {{refund: 5}}}}).json()
  print("compensated", refund.charged)
}}
''')


@case
def effect_in_flight():
    # Effect 1 is print, effect 2 the charge: killed after it reached the server.
    first, second = crash_then_resume(charge_program(), "o1", "2:after-effect", args=("--arg", "order=7"))
    lines = second.stdout.splitlines()
    check("in_doubt carries data {step, line} (the step's line)",
          first.returncode == -9 and second.returncode == 0 and lines[:1] == ["in_doubt charge-7 3"],
          second.stdout + second.stderr)
    check("the in_doubt message names the step and its line",
          len(lines) > 1 and '"charge-7"' in lines[1] and "line 3" in lines[1], second.stdout)
    check("the compensation is a new effect with a key of its own (not deduplicated as the charge)",
          lines[2:] == ['compensated {"refund":5}'], second.stdout)

    posts = [(h["seq"], h["state"], h["idempotency_key"]) for h in history("o1") if h["effect"] == "http.post"]
    check("flow history --json marks the charge in doubt; the compensation follows it",
          posts == [(2, "in_doubt", "o1/charge-7/2"), (5, "done", "o1/5")], posts)  # 3, 4: the prints
    text = flow("history", "o1", "--store", store()).stdout
    row = [l for l in text.splitlines() if "http.post" in l][:1]
    check("flow history (text) marks it in_doubt", row and "in_doubt" in row[0].split(), text)


@case
def between_effects():
    """Stopped inside the step with no effect in flight (after the print's checkpoint): the
    step is still in doubt, named the same way, and no history entry is marked."""
    _, second = crash_then_resume(charge_program(), "o2", "1:after-checkpoint", args=("--arg", "order=8"))
    hist = history("o2")
    check("a stop between effects of a once step: in_doubt names the step, nothing is marked",
          second.stdout.startswith("in_doubt charge-8 3\n") and not any(h["state"] == "in_doubt" for h in hist),
          second.stdout + second.stderr)


main()
