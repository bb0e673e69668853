#!/usr/bin/env python3
"""Shared limits (`limit NAME (concurrency: N, rate: R, per: D) { }`) across runs and
processes of one store, measured by a local server that counts requests in flight:
N at once, never N+1, all complete; a slot held by a run that was killed (kill -9) or
suspended inside the body stays held until it resumes and leaves the body; one held by a
run that was cancelled or deleted is freed; a long wait for a slot suspends the run, due
again, and the resumed run takes the slot; examples/retry_storm.flow (limit + breaker +
retry honoring Retry-After) against a server coming back from an outage."""
import json, os, re, signal, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, ROOT, case, check, flow, main, program, record, status, store  # noqa: E402


class Counter:
    """What the server saw: requests, the most in flight at once, holds that arrived."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = self.inflight = self.peak = 0
        self.throttle = 0  # the next requests answered 429 with Retry-After: 1
        self.arrived, self.release = {}, {}

    def hold(self, name):
        with self.lock:
            self.arrived.setdefault(name, threading.Event())
            self.release.setdefault(name, threading.Event())
        return self.arrived[name], self.release[name]


counter = Counter()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, payload, headers=()):
        body = json.dumps(payload).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client was killed (kill -9) while its call was in flight
            pass

    def do_GET(self):
        c = counter
        with c.lock:
            c.requests += 1
            c.inflight += 1
            c.peak = max(c.peak, c.inflight)
            throttled = c.throttle > 0
            c.throttle -= throttled
        try:
            if self.path.startswith("/hold/"):  # in flight until the test releases it
                arrived, release = c.hold(self.path[len("/hold/"):])
                arrived.set()
                release.wait(60)
                return self.reply(200, {"held": True})
            if throttled:
                return self.reply(429, {"slow": "down"}, [("Retry-After", "1")])
            time.sleep(0.15)  # /work, /orders/ID: long enough for others to pile up
            return self.reply(200, {"state": "shipped"})
        finally:
            with c.lock:
                c.inflight -= 1


_base = None


def base():
    """The counting server, on 127.0.0.1 and a free port, started once."""
    global _base
    if _base is None:
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        _base = f"http://127.0.0.1:{srv.server_address[1]}"
    return _base


def reset():
    with counter.lock:
        counter.requests = counter.inflight = counter.peak = counter.throttle = 0


def start(prog, run_id, *args):
    return subprocess.Popen([FLOW, "run", prog, "--store", store(), "--run-id", run_id, "--arg", f"base={base()}", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@case
def n_at_once_across_processes():
    reset()
    prog = program("fan.flow", '''
let codes = parallel for i in range(4) {
  limit api (concurrency: 3) { http.get("${args.base}/work").status }
}
print(codes)
''')
    procs = [start(prog, f"fan-{i}") for i in range(6)]
    outs = [p.communicate(timeout=120) for p in procs]
    check("six processes of four tasks each all complete",
          all(p.returncode == 0 and out.strip() == "[200,200,200,200]" for p, (out, _) in zip(procs, outs)),
          [(p.returncode, out, err[-300:]) for p, (out, err) in zip(procs, outs)])
    check("the server got every call", counter.requests == 24, counter.requests)
    check("at most 3 calls were in flight at once, and 3 were", counter.peak == 3, f"peak {counter.peak}")
    check("the limit is free again: a new run enters at once", run_probe() == "entered")


def probe_program():
    return program("probe.flow", '''
try {
  timeout 1s { limit api (concurrency: 1) { print("entered") } }
} catch e {
  print(e.kind)
}
''')


def run_probe():
    """`entered` if a run can take the only slot of `api`, `timeout` if it is held."""
    return flow("run", probe_program(), "--store", store()).stdout.strip()


HOLDER = '''
limit api (concurrency: 1) {
  %s
}
print("left the body")
'''


@case
def killed_holder_keeps_its_slot_until_resumed():
    reset()
    arrived, release = counter.hold("killed")
    holder = start(program("a.flow", HOLDER % 'http.get("${args.base}/hold/killed")'), "holder")
    check("the holder called the server from inside the body", arrived.wait(30))
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    check("the holder's run reads as crashed", status(store(), "holder") == "crashed", status(store(), "holder"))
    check("its slot stays held: another run waits for it", run_probe() == "timeout")
    release.set()
    r = flow("resume", "holder", "--store", store())
    check("resumed, the holder leaves the body", r.returncode == 0 and "left the body" in r.stdout, r.stderr)
    check("and frees the slot", run_probe() == "entered")


@case
def crash_just_after_taking_the_slot():
    # Killed after LIMIT_BEGIN took the slot, before the body's first effect: the last
    # checkpoint is outside the body, so the resumed run enters it again, and must find
    # the slot its own rather than wait for itself.
    prog = program("c.flow", 'print("start")\n' + HOLDER % 'print("inside")')
    r = flow("run", prog, "--store", store(), "--run-id", "crashed", crash="2:before-intent")
    check("killed inside the body, before its first effect", r.returncode == -signal.SIGKILL and "inside" not in r.stdout,
          (r.returncode, r.stdout, r.stderr))
    check("the crashed run holds the slot", run_probe() == "timeout")
    r = flow("resume", "crashed", "--store", store())
    check("resumed, it enters the body again without waiting for itself, and completes",
          r.returncode == 0 and r.stdout.split() == ["inside", "left", "the", "body"], (r.returncode, r.stdout, r.stderr))
    check("and frees the slot", run_probe() == "entered")


@case
def suspended_holder_keeps_its_slot():
    r = flow("run", program("a.flow", HOLDER % 'signal.wait("go")'), "--store", store(), "--run-id", "holder")
    check("the holder suspends inside the body", r.returncode == 75, (r.returncode, r.stderr))
    check("its slot stays held", run_probe() == "timeout")
    flow("signal", "holder", "go", "--store", store())
    r = flow("resume", "holder", "--store", store())
    check("signalled and resumed, it leaves the body", r.returncode == 0 and "left the body" in r.stdout, r.stderr)
    check("and frees the slot", run_probe() == "entered")


@case
def cancelled_or_deleted_holder_frees_its_slot():
    prog = program("a.flow", HOLDER % 'signal.wait("go")')
    flow("run", prog, "--store", store(), "--run-id", "cancelled")
    check("a suspended holder holds the slot", run_probe() == "timeout")
    r = flow("cancel", "cancelled", "--store", store())
    check("flow cancel ends it", status(store(), "cancelled") == "cancelled", (r.returncode, r.stderr))
    check("its slot is free", run_probe() == "entered")
    flow("run", prog, "--store", store(), "--run-id", "deleted")
    check("another suspended holder holds the slot", run_probe() == "timeout")
    r = flow("delete", "deleted", "--store", store())
    check("flow delete removes it", r.returncode == 0, r.stderr)
    check("a deleted run's slot is free", run_probe() == "entered")


@case
def long_wait_suspends_and_resumes_in_line():
    flow("run", program("a.flow", HOLDER % 'signal.wait("go")'), "--store", store(), "--run-id", "holder")
    waiter = program("w.flow", 'print(limit api (concurrency: 1) { "waiter entered" })\n')
    r = flow("run", waiter, "--store", store(), "--run-id", "waiter")
    due = re.search(r"due in (\d+) ms", r.stderr)
    check("a wait for a slot longer than 10 s suspends the run (exit 75)", r.returncode == 75, (r.returncode, r.stderr))
    check("suspended, due again at its next try, over 10 s away (a long wait's)",
          status(store(), "waiter") == "suspended" and due and int(due.group(1)) > 10_000, r.stderr)
    shown = flow("inspect", "waiter", "--store", store()).stdout
    check("flow inspect says it waits on the limit", "limit api" in shown, shown)
    detail = record(store(), "waiter").get("detail")
    check("flow runs says so", detail == "waiting for a slot of limit api", detail)
    r = flow("resume", "waiter", "--store", store())
    check("resumed while the slot is held, it suspends again", r.returncode == 75, (r.returncode, r.stderr))
    flow("signal", "holder", "go", "--store", store())
    flow("resume", "holder", "--store", store())
    r = flow("resume", "waiter", "--store", store())
    check("resumed once the slot is free, it enters", r.returncode == 0 and r.stdout.strip() == "waiter entered",
          (r.returncode, r.stdout, r.stderr))


@case
def retry_storm_example():
    reset()
    with counter.lock:
        counter.throttle = 6  # coming back from an outage: the first calls are told to come back in 1 s
    example = os.path.join(ROOT, "examples", "retry_storm.flow")
    procs = [subprocess.Popen([FLOW, "run", example, "--store", store(), "--arg", f"api={base()}", "--arg", f"order={i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    check("eight runs at once all get their order",
          all(p.returncode == 0 and out.strip() == f"order {i}: shipped" for i, (p, (out, _)) in enumerate(zip(procs, outs))),
          [(p.returncode, out, err[-300:]) for p, (out, err) in zip(procs, outs)])
    check("each throttled call was retried once, no more: 8 + 6 requests", counter.requests == 14, counter.requests)
    check("never more than the limit's 2 calls in flight", counter.peak <= 2, counter.peak)


if __name__ == "__main__":
    main()
