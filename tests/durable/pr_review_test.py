#!/usr/bin/env python3
"""The PR-review example end to end, against the local stand-ins of
examples/fake_services.py: killed (-9) during the model call, finished by `flow resume`,
the comment posted exactly once."""
import json, os, signal, subprocess, sys, tempfile, time, urllib.request

FLOW = os.path.abspath(sys.argv[1])
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import check, failures, finish, start_server  # noqa: E402


services, base = start_server(os.path.join(ROOT, "examples", "fake_services.py"), "--llm-delay-ms", "1500")


def stats():
    return json.load(urllib.request.urlopen(base + "/stats"))


try:
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        env = dict(os.environ, GH_API=base, FLOW_LLM_BASE_URL=base)
        env.pop("OPENAI_API_KEY", None)
        cmd = [FLOW, "run", os.path.join(ROOT, "examples", "pr_review.flow"), "--store", store, "--run-id", "pr42",
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
        r = subprocess.run([FLOW, "resume", "pr42", "--store", store], capture_output=True, text=True, env=env, timeout=60)
        comments = json.load(urllib.request.urlopen(base + "/comments"))
        check("flow resume finishes the review", r.returncode == 0 and r.stdout.startswith("done: 42 comment 1"),
              r.stdout + r.stderr)
        check("the comment was posted exactly once", len(comments) == 1 and comments[0]["body"].startswith("LGTM"),
              comments)
        hist = json.loads(subprocess.run([FLOW, "history", "pr42", "--json", "--store", store], capture_output=True,
                                         text=True).stdout)
        llm_calls = [h for h in hist if h["effect"] == "llm.chat"]
        check("the model call in flight ran again with the same idempotency key",
              len(llm_calls) == 1 and llm_calls[0]["idempotency_key"] == "pr42/review/1", llm_calls)
finally:
    services.kill()
finish()
