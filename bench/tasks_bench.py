#!/usr/bin/env python3
"""Tasks (issue 10), whole-process figures:
  (a) 60 http calls to a local server that answers in 100 ms: `parallel (limit: 20)` against
      the same calls one after another, in the same run of this script (durable runs);
  (b) 10,000 tasks that each sleep(1s) under --virtual-time: wall time and peak RSS.
(c), bytes per checkpoint as live tasks grow, is `build/bench/durable_bench --only f`.

Usage: python3 bench/tasks_bench.py [FLOW_BINARY] [--runs=N]   (default build/flow, 5 runs)"""
import os, resource, statistics, subprocess, sys, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(0.1)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


def timed(cmd):
    """Runs cmd; returns (seconds, peak RSS in MB, exit code)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - start
    p.stderr.read()
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flow = os.path.abspath(args[0] if args else "build/flow")
    runs = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--runs=")), 5)
    work = tempfile.mkdtemp(prefix="flow-tasks-bench-")
    server = Server(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def program(name, text):
        path = os.path.join(work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    fan = program("fan.flow", 'let r = parallel (limit: 20) for i in range(60) { http.get("${args.base}/x").status }\n'
                              'print(len(r))\n')
    seq = program("seq.flow", 'let r = []\nfor i in range(60) { r.push(http.get("${args.base}/x").status) }\n'
                              'print(len(r))\n')
    sleepers = program("sleepers.flow", 'let ts = []\nfor i in range(10000) { ts.push(spawn { sleep(1s); i }) }\n'
                                        'let t0 = time.now()\nlet r = await ts\nprint(len(r), time.now() - t0)\n')
    env = dict(os.environ, FLOW_CACHE_DIR=os.path.join(work, "cache"))
    os.environ.update(env)
    fan_s, seq_s = [], []
    for i in range(runs):  # interleaved, so that both see the same machine
        store = os.path.join(work, f"s{i}")
        fan_s.append(timed([flow, "run", fan, "--store", store, "--arg", f"base={base}"])[0])
        seq_s.append(timed([flow, "run", seq, "--store", store, "--arg", f"base={base}"])[0])
    print("(a) 60 http calls, each answered in 100 ms (durable runs, whole process; median of %d)" % runs)
    print(f"    parallel (limit: 20): {statistics.median(fan_s):.3f} s   sequential: {statistics.median(seq_s):.3f} s"
          f"   ratio {statistics.median(seq_s) / statistics.median(fan_s):.1f}x   (target <= 1.2 s)")
    results = [timed([flow, "run", sleepers, "--virtual-time", "--store", os.path.join(work, f"v{i}")]) for i in range(max(1, runs // 2))]
    print("(b) 10,000 tasks that each sleep(1s), --virtual-time (durable, whole process)")
    print(f"    {statistics.median(r[0] for r in results):.2f} s, peak RSS {max(r[1] for r in results):.0f} MB"
          f"   (target <= 10 s and <= 256 MB)")
    eph = [timed([flow, "run", sleepers, "--virtual-time", "--ephemeral"]) for _ in range(max(1, runs // 2))]
    print(f"    --ephemeral: {statistics.median(r[0] for r in eph):.2f} s, peak RSS {max(r[1] for r in eph):.0f} MB")
    server.shutdown()


if __name__ == "__main__":
    main()
