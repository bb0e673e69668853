#!/usr/bin/env python3
"""A run stopped by a budget resumes, with a new budget, to real results. When an effect's
error is caught by no handler, the checkpoint is the call itself (its handlers and step
count as they were), so the resumed run makes the call again: the model's reply, never
its own request, and no crash on handlers that the error had unwound. Every budget
(tokens: raised by llm.chat; effects: raised before an effect; deadline: raised by a
sleep it cuts short) with and without an enclosing timeout, retry, step and all three."""
import json, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import add_case, case, check, fake_services, flow, main, program, store  # noqa: E402

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


def source(wrapper, pause):
    body = WRAPPERS[wrapper].format(pause=pause, call=CALL.format(n="${i}"))
    return f'''fn pause(d) {{ if d > 0 {{ sleep(d) }} }}
for i in range(3) {{
  {body}
  print(i, r.content)
}}
'''


def services_env(*args):
    env = dict(os.environ, FLOW_LLM_BASE_URL=fake_services(*args))
    env.pop("OPENAI_API_KEY", None)
    return env


def stopped_then_resumed(budget, wrapper):
    first_args, resume_args, pause = BUDGETS[budget]
    rid = f"{budget}-{wrapper}"
    path = program(rid + ".flow", source(wrapper, pause))
    first = flow("run", path, "--store", store(), "--run-id", rid, "--virtual-time", *first_args, env=services_env())
    second = flow("resume", rid, "--store", store(), *resume_args, env=services_env())
    lines = (first.stdout + second.stdout).splitlines()
    check(f"{budget} budget, {wrapper}: stopped with `budget`, resumed to three real replies",
          first.returncode == 1 and "error: budget:" in first.stderr and second.returncode == 0 and
          lines == [f"{i} {REPLY}" for i in range(3)] and len(second.stdout.splitlines()) >= 1,
          f"rc {first.returncode}/{second.returncode}\n{first.stdout}{first.stderr}{second.stdout}{second.stderr}")


for budget in BUDGETS:
    for wrapper in WRAPPERS:
        if (budget, wrapper) != ("tokens", "step-retry-timeout"):  # a case of its own, below
            add_case(f"{budget}_{wrapper.replace('-', '_')}", stopped_then_resumed, budget, wrapper)


def deadline_in_call(wrapper):
    """The deadline cuts the model call itself short (the model takes 2 s, the run has 1 s):
    llm.chat raises `budget`, not a plain `timeout`, so the run may go on."""
    rid = f"deadline-in-call-{wrapper}"
    path = program(rid + ".flow", source(wrapper, "pause(0)").replace("range(3)", "range(1)"))
    slow_env = services_env("--llm-delay-ms", "2000")
    first = flow("run", path, "--store", store(), "--run-id", rid, "--deadline", "1s", env=slow_env)
    second = flow("resume", rid, "--store", store(), "--deadline", "1h", env=slow_env)
    check(f"deadline in the model call, {wrapper}: budget, then resumed to the reply",
          first.returncode == 1 and "error: budget:" in first.stderr and second.returncode == 0 and
          second.stdout == f"0 {REPLY}\n", f"{first.stderr}{second.stdout}{second.stderr}")


for wrapper in ["bare", "step-retry-timeout"]:
    add_case(f"deadline_in_call_{wrapper.replace('-', '_')}", deadline_in_call, wrapper)


@case
def tokens_step_retry_timeout():
    """The stopped call is on record as raised; the resumed one is the next effect, and
    inside a step it carries the same key (it is the same logical call)."""
    stopped_then_resumed("tokens", "step-retry-timeout")
    hist = json.loads(flow("history", "tokens-step-retry-timeout", "--json", "--store", store()).stdout)
    chats = [(h["state"], h["idempotency_key"]) for h in hist if h["effect"] == "llm.chat"]
    check("history: the call the budget stopped is raised, the resumed call has its key",
          chats[-2:] == [("raised", "tokens-step-retry-timeout/review-2/1"),
                         ("done", "tokens-step-retry-timeout/review-2/1")], chats)


main()
