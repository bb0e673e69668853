#!/usr/bin/env python3
"""A run stopped by a budget resumes, with a new budget, to real results. When an effect's
error is caught by no handler, the checkpoint is the call itself (its handlers and step
count as they were), so the resumed run makes the call again: the model's reply, never
its own request, and no crash on handlers that the error had unwound. Every budget
(tokens: raised by llm.chat; effects: raised before an effect; deadline: raised by a
sleep it cuts short) with and without an enclosing timeout, retry, step and all three."""
import json, os, subprocess, sys, tempfile

FLOW = os.path.abspath(sys.argv[1])
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import check, finish, start_server  # noqa: E402

services, base = start_server(os.path.join(ROOT, "examples", "fake_services.py"))
tmp = tempfile.mkdtemp()
store = os.path.join(tmp, "store")
env = dict(os.environ, FLOW_LLM_BASE_URL=base)
env.pop("OPENAI_API_KEY", None)
REPLY = "LGTM: skipping None values is right; add a test for an all-None list."

# Each is one loop iteration's `let r = ...` around CALL (`pause` sleeps first, for the deadline).
WRAPPERS = {
    "bare": "{pause}\n  let r = {call}",
    "timeout": "let r = timeout 1h {{ {pause}\n {call} }}",
    "retry": "let r = retry (attempts: 3, backoff: 10ms) {{ {pause}\n {call} }}",
    "step": 'let r = step "review-${{i}}" {{ {pause}\n {call} }}',
    "step-retry-timeout":
        'let r = step "review-${{i}}" {{ retry (attempts: 3, backoff: 10ms) {{ timeout 1h {{ {pause}\n {call} }} }} }}',
}
CALL = 'llm.chat({{model: "m", messages: [{{role: "user", content: "review {n} passed"}}]}})'
# Budgets that stop the run at the second or third call, and what the resume gives.
BUDGETS = {
    # about 20 tokens a call: the third call raises budget inside llm.chat.
    "tokens": (["--max-tokens", "30"], ["--max-tokens", "1000"], "pause(0)"),
    # llm.chat, print, then the second llm.chat is refused before it runs.
    "effects": (["--max-effects", "2"], ["--max-effects", "1000"], "pause(0)"),
    # a 2 s sleep before each call, 3 s of run time: the second sleep raises budget.
    "deadline": (["--deadline", "3s"], ["--deadline", "1h"], "pause(2s)"),
}


def program(wrapper, pause):
    body = WRAPPERS[wrapper].format(pause=pause, call=CALL.format(n="${i}"))
    return f'''fn pause(d) {{ if d > 0 {{ sleep(d) }} }}
for i in range(3) {{
  {body}
  print(i, r.content)
}}
'''


try:
    for budget, (first_args, resume_args, pause) in BUDGETS.items():
        for wrapper in WRAPPERS:
            rid = f"{budget}-{wrapper}"
            path = os.path.join(tmp, rid + ".flow")
            open(path, "w").write(program(wrapper, pause))
            first = subprocess.run([FLOW, "run", path, "--store", store, "--run-id", rid, "--virtual-time", *first_args],
                                   capture_output=True, text=True, env=env, timeout=60)
            second = subprocess.run([FLOW, "resume", rid, "--store", store, *resume_args], capture_output=True,
                                    text=True, env=env, timeout=60)
            lines = (first.stdout + second.stdout).splitlines()
            check(f"{budget} budget, {wrapper}: stopped with `budget`, resumed to three real replies",
                  first.returncode == 1 and "error: budget:" in first.stderr and second.returncode == 0 and
                  lines == [f"{i} {REPLY}" for i in range(3)] and len(second.stdout.splitlines()) >= 1,
                  f"rc {first.returncode}/{second.returncode}\n{first.stdout}{first.stderr}{second.stdout}{second.stderr}")
    # The deadline cuts the model call itself short (the model takes 2 s, the run has 1 s):
    # llm.chat raises `budget`, not a plain `timeout`, so the run may go on.
    slow, slow_base = start_server(os.path.join(ROOT, "examples", "fake_services.py"), "--llm-delay-ms", "2000")
    try:
        for wrapper in ["bare", "step-retry-timeout"]:
            rid = f"deadline-in-call-{wrapper}"
            path = os.path.join(tmp, rid + ".flow")
            open(path, "w").write(program(wrapper, "pause(0)").replace("range(3)", "range(1)"))
            slow_env = dict(env, FLOW_LLM_BASE_URL=slow_base)
            first = subprocess.run([FLOW, "run", path, "--store", store, "--run-id", rid, "--deadline", "1s"],
                                   capture_output=True, text=True, env=slow_env, timeout=60)
            second = subprocess.run([FLOW, "resume", rid, "--store", store, "--deadline", "1h"], capture_output=True,
                                    text=True, env=slow_env, timeout=60)
            check(f"deadline in the model call, {wrapper}: budget, then resumed to the reply",
                  first.returncode == 1 and "error: budget:" in first.stderr and second.returncode == 0 and
                  second.stdout == f"0 {REPLY}\n", f"{first.stderr}{second.stdout}{second.stderr}")
    finally:
        slow.kill()
    # The stopped call is on record as raised; the resumed one is the next effect, and
    # inside a step it carries the same key (it is the same logical call).
    hist = json.loads(subprocess.run([FLOW, "history", "tokens-step-retry-timeout", "--json", "--store", store],
                                     capture_output=True, text=True).stdout)
    chats = [(h["state"], h["idempotency_key"]) for h in hist if h["effect"] == "llm.chat"]
    check("history: the call the budget stopped is raised, the resumed call has its key",
          chats[-2:] == [("raised", "tokens-step-retry-timeout/review-2/1"),
                         ("done", "tokens-step-retry-timeout/review-2/1")], chats)
finally:
    services.kill()
finish()
