#!/usr/bin/env python3
"""Local stand-ins for the services of examples/pr_review.flow and examples/fanout.flow: a
code host API and an OpenAI-compatible model API, on 127.0.0.1 and a free port (printed as
`PORT n`).

  GET  /pulls                     the open pull requests' numbers (--prs of them)
  GET  /pulls/N.diff              a unified diff
  POST /pulls/N/comments          posts a comment, once per Idempotency-Key
  GET  /comments                  the comments posted
  POST /v1/chat/completions       a canned review (after --llm-delay-ms); the first
                                  --llm-fail requests answer 429 with Retry-After: 1
  GET  /stats                     {"llm_started": n, "llm_done": n, "comment_requests": n,
                                   "llm_peak": most model calls in flight at once}

Usage: fake_services.py [--llm-delay-ms MS] [--llm-fail N] [--prs N]
Then: GH_API=http://127.0.0.1:PORT FLOW_LLM_BASE_URL=http://127.0.0.1:PORT flow run examples/pr_review.flow
"""
import argparse, json, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = None
lock = threading.Lock()
state = {"llm_started": 0, "llm_done": 0, "comment_requests": 0, "comments": [], "by_key": {}, "llm_now": 0,
         "llm_peak": 0}

DIFF = """--- a/app.py
+++ b/app.py
@@ -1,3 +1,4 @@
 def total(xs):
-    return sum(xs)
+    # skip missing values
+    return sum(x for x in xs if x is not None)
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, body, ctype="application/json", extra=None):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed mid-request: what the demo is about

    def do_GET(self):
        if self.path == "/pulls":
            return self.send(200, [101 + i for i in range(args.prs)])
        if self.path.endswith(".diff"):
            return self.send(200, DIFF, "text/x-diff")
        if self.path == "/comments":
            with lock:
                return self.send(200, state["comments"])
        if self.path == "/stats":
            with lock:
                return self.send(200, {k: state[k] for k in ("llm_started", "llm_done", "comment_requests", "llm_peak")})
        self.send(404, {"error": "not found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        if self.path.startswith("/pulls/") and self.path.endswith("/comments"):
            key = self.headers.get("Idempotency-Key", "")
            with lock:
                state["comment_requests"] += 1
                if key and key in state["by_key"]:
                    return self.send(200, state["by_key"][key])
                comment = {"id": len(state["comments"]) + 1, "body": body.get("body"), "key": key}
                state["comments"].append(comment)
                if key:
                    state["by_key"][key] = comment
            return self.send(201, comment)
        if self.path == "/v1/chat/completions":
            with lock:
                state["llm_started"] += 1
                n = state["llm_started"]
            if n <= args.llm_fail:
                return self.send(429, {"error": "rate limited"}, extra={"Retry-After": "1"})
            with lock:
                state["llm_now"] += 1
                state["llm_peak"] = max(state["llm_peak"], state["llm_now"])
            time.sleep(args.llm_delay_ms / 1000)
            prompt = body["messages"][-1]["content"]
            review = "LGTM: skipping None values is right; add a test for an all-None list."
            if "passed" not in prompt:
                review = "Tests are failing: fix them first."
            if prompt.startswith("Triage PR "):  # fanout.flow: one label per pull request
                number = int(prompt.split()[2].rstrip(":"))
                review = ["bug", "feature", "docs"][number % 3]
            with lock:
                state["llm_done"] += 1
                state["llm_now"] -= 1
            return self.send(200, {"id": "chatcmpl-fake", "model": body.get("model"),
                                   "choices": [{"index": 0, "message": {"role": "assistant", "content": review}}],
                                   "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 17,
                                             "total_tokens": len(prompt) // 4 + 17}})
        self.send(404, {"error": "not found"})


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("--llm-delay-ms", type=int, default=0)
    ap.add_argument("--llm-fail", type=int, default=0)
    ap.add_argument("--prs", type=int, default=12)
    args = ap.parse_args()
    ThreadingHTTPServer.request_queue_size = 128  # many calls at once (fanout.flow)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
