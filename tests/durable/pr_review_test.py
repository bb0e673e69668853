#!/usr/bin/env python3
"""The PR-review example end to end, against the local stand-ins of
examples/fake_services.py: killed (-9) during the model call, finished by `flow resume`,
the comment posted exactly once."""
import os, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, ROOT, case, check, fake_services, flow, get_json, history, main, store  # noqa: E402


@case
def killed_during_model_call():
    base = fake_services("--llm-delay-ms", "1500")

    def stats():
        return get_json(base + "/stats")

    env = dict(os.environ, GH_API=base, FLOW_LLM_BASE_URL=base)
    env.pop("OPENAI_API_KEY", None)
    cmd = [FLOW, "run", os.path.join(ROOT, "examples", "pr_review.flow"), "--store", store(), "--run-id", "pr42",
           "--arg", "pr=42"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 20
    while stats()["llm_started"] == 0 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    check("the run was killed during the model call", stats()["llm_started"] == 1 and stats()["llm_done"] == 0,
          stats())
    r = flow("resume", "pr42", "--store", store(), env=env)
    comments = get_json(base + "/comments")
    check("flow resume finishes the review", r.returncode == 0 and r.stdout.startswith("done: 42 comment 1"),
          r.stdout + r.stderr)
    check("the comment was posted exactly once", len(comments) == 1 and comments[0]["body"].startswith("LGTM"),
          comments)
    llm_calls = [h for h in history("pr42") if h["effect"] == "llm.chat"]
    check("the model call in flight ran again with the same idempotency key",
          len(llm_calls) == 1 and llm_calls[0]["idempotency_key"] == "pr42/review/1", llm_calls)


main()
