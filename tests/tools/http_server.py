#!/usr/bin/env python3
"""A local HTTP server for tests: binds 127.0.0.1 on a free port, prints `PORT n` on its
first line, and serves until killed.

  GET  /echo?x=1          200, JSON {method, path, headers, body}
  POST /charge            applies a charge once per Idempotency-Key (a repeat returns
                          the first answer without applying it again)
  GET  /status/N          answers status N
  GET  /stats             JSON {"requests": n, "applied": {key: times_applied}, "seen": {key: times_seen}}
  POST /flaky/ID/K         503 for the first K requests of ID, then 200; records each one's Idempotency-Key
  GET  /keys/ID            JSON list: the Idempotency-Key of each request to /flaky/ID, in order
  GET  /throttle/ID/S/K    429 with Retry-After: S for the first K requests of ID, then 200
  GET  /big/N              200 with a body of N bytes
  GET  /slow/MS            200 after MS milliseconds
  PUT, PATCH, DELETE       echo, as POST does
  POST /digest?...         200, JSON {body, query, authorization}: the SHA-256 of each as
                          received (a test learns what went over the wire even where flow
                          scrubs an echo of a secret)
"""
import hashlib, json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
stats = {"requests": 0, "applied": {}, "seen": {}, "answers": {}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed mid-request: what the crash tests do

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode("utf-8", "replace") if n else ""

    def do_GET(self):
        with lock:
            stats["requests"] += 1
        if self.path == "/stats":
            with lock:
                return self.reply(200, {k: v for k, v in stats.items() if k != "answers"})
        if self.path.startswith("/throttle/"):
            _, _, tid, after, times = self.path.split("/")
            with lock:
                n = stats.setdefault("throttled", {}).get(tid, 0)
                stats["throttled"][tid] = n + 1
            if n < int(times):
                body = b'{"slow": "down"}'
                self.send_response(429)
                self.send_header("Retry-After", after)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            return self.reply(200, {"after": n})
        if self.path.startswith("/keys/"):
            with lock:
                return self.reply(200, stats.setdefault("flaky", {}).get(self.path.split("/")[2], []))
        if self.path.startswith("/big/"):
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            while n > 0:
                try:
                    self.wfile.write(chunk[: min(n, len(chunk))])
                except OSError:
                    return
                n -= len(chunk)
            return
        if self.path.startswith("/slow/"):
            import time
            with lock:  # how many slow requests are in flight at once, at most
                stats["slow_now"] = stats.get("slow_now", 0) + 1
                stats["slow_peak"] = max(stats.get("slow_peak", 0), stats["slow_now"])
            time.sleep(int(self.path.split("/")[2].split("?")[0]) / 1000)
            with lock:
                stats["slow_now"] -= 1
            return self.reply(200, {"slow": True})
        if self.path.startswith("/status/"):
            code = int(self.path.split("?")[0].split("/")[2])
            return self.reply(code, {"status": code})
        return self.reply(200, {"method": "GET", "path": self.path, "headers": dict(self.headers), "body": ""})

    def do_POST(self):
        body = self.body()
        key = self.headers.get("Idempotency-Key", "")
        with lock:
            stats["requests"] += 1
            stats["seen"][key] = stats["seen"].get(key, 0) + 1
            if self.path.startswith("/flaky/"):
                _, _, fid, fails = self.path.split("/")
                keys = stats.setdefault("flaky", {}).setdefault(fid, [])
                keys.append(key)
                if len(keys) <= int(fails):
                    return self.reply(503, {"attempt": len(keys)})
                return self.reply(200, {"attempt": len(keys)})
            if self.path.startswith("/digest"):
                sha = lambda s: hashlib.sha256(s.encode()).hexdigest()
                query = self.path.partition("?")[2]
                return self.reply(200, {"body": sha(body), "query": sha(query),
                                        "authorization": sha(self.headers.get("Authorization", ""))})
            if self.path == "/charge" or self.path == "/charge/slow":
                if key and key in stats["answers"]:
                    answer = stats["answers"][key]
                else:
                    stats["applied"][key] = stats["applied"].get(key, 0) + 1
                    answer = {"charged": json.loads(body or "null"), "key": key, "n": len(stats["applied"])}
                    if key:
                        stats["answers"][key] = answer
                slow = self.path == "/charge/slow"  # applied now, answered 50 ms later
        if self.path in ("/charge", "/charge/slow"):
            if slow:
                import time
                time.sleep(0.05)
            return self.reply(200, answer)
        return self.reply(200, {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})


Handler.do_PUT = Handler.do_POST
Handler.do_PATCH = Handler.do_POST
Handler.do_DELETE = Handler.do_POST


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # many transfers at once (tasks): the default backlog of 5 drops SYNs
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a killed client's connection: expected in the crash tests


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
