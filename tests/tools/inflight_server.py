#!/usr/bin/env python3
"""A local HTTP server that counts requests in flight, for tests of caps (queues, limits):
binds 127.0.0.1 on a free port, prints `PORT n` on its first line, serves until killed.

  GET /hold/TAG?until=N&ms=M   answers once N requests are in flight at once (any tag) or M
                               ms have passed, whichever comes first: a cap below N makes
                               every request wait M ms, no cap lets them meet at once
  GET /stats                   JSON {"max_in_flight", "in_flight", "done": {tag: count}}
  GET /reset                   zeroes the counts
"""
import json, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

cond = threading.Condition()
state = {"in_flight": 0, "max_in_flight": 0, "done": {}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/stats":
            with cond:
                return self.reply(dict(state))
        if url.path == "/reset":
            with cond:
                state.update(in_flight=0, max_in_flight=0, done={})
            return self.reply({})
        if url.path.startswith("/hold/"):
            tag = url.path[len("/hold/"):]
            q = urllib.parse.parse_qs(url.query)
            until, ms = int(q.get("until", ["2"])[0]), int(q.get("ms", ["1000"])[0])
            with cond:
                state["in_flight"] += 1
                state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
                cond.notify_all()
                deadline = time.monotonic() + ms / 1000
                while state["in_flight"] < until and time.monotonic() < deadline:
                    cond.wait(deadline - time.monotonic())
                # Out of flight before the answer leaves: the caller's next request cannot
                # overlap this one in the counts.
                state["in_flight"] -= 1
                state["done"][tag] = state["done"].get(tag, 0) + 1
            return self.reply({"tag": tag})
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
