#!/usr/bin/env python3
"""OpenTelemetry and traces (issue 11, point 7): `flow trace --format otlp` is an OTLP/JSON
ExportTraceServiceRequest checked field by field against the spec's encoding (hex ids of
the right lengths, nanosecond times as decimal strings, parent links, typed attributes,
exception events, GenAI attributes on llm.chat); FLOW_OTLP_ENDPOINT sends the spans live
to a local receiver, and an unreachable collector neither fails nor stalls the run; the
Chrome form has microsecond times, named tracks, waits at their real length, failed and
unfinished steps marked."""
import http.server, json, os, re, socket, subprocess, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import case, check, fake_services, flow, main, program, store  # noqa: E402

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
DIGITS = re.compile(r"^[0-9]+$")

WORK = '''
step "fetch" { sleep(300ms) }
let t = spawn {
  sleep(20ms)
  log.info("in a task")
}
await t
try {
  step "flaky" { http.get("http://127.0.0.1:1/down") }
} catch e {
  print("caught " + e.kind)
}
retry(attempts: 2, backoff: 10ms) {
  step "again" { http.get("http://127.0.0.1:1/down") }
}
'''


def otlp(run_id, env=None):
    r = flow("trace", run_id, "--store", store(), "--format", "otlp", env=env)
    return r, (json.loads(r.stdout) if r.returncode == 0 else None)


def spans_of(request):
    return [s for rs in request["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def attrs(items):
    """OTLP attributes as a dict: {key: (type, value)}."""
    return {a["key"]: next(iter(a["value"].items())) for a in items}


def check_any_value(v):
    return (isinstance(v, dict) and len(v) == 1 and
            (("stringValue" in v and isinstance(v["stringValue"], str)) or
             ("intValue" in v and isinstance(v["intValue"], str) and re.match(r"^-?[0-9]+$", v["intValue"])) or
             ("boolValue" in v and isinstance(v["boolValue"], bool)) or
             ("doubleValue" in v and isinstance(v["doubleValue"], (int, float)))))


def spec_problems(request):
    """What in an ExportTraceServiceRequest breaks OTLP/JSON's rules ([] if nothing)."""
    bad = []
    if not isinstance(request.get("resourceSpans"), list) or not request["resourceSpans"]:
        return ["no resourceSpans"]
    for rs in request["resourceSpans"]:
        for a in rs.get("resource", {}).get("attributes", []):
            if not check_any_value(a.get("value")):
                bad.append(f"resource attribute {a}")
        for ss in rs.get("scopeSpans", []):
            if ss.get("scope", {}).get("name") != "flow":
                bad.append(f"scope {ss.get('scope')}")
            for s in ss.get("spans", []):
                where = s.get("name", "?")
                if not HEX32.match(s.get("traceId", "")) or set(s["traceId"]) == {"0"}:
                    bad.append(f"{where}: traceId {s.get('traceId')}")
                if not HEX16.match(s.get("spanId", "")) or set(s["spanId"]) == {"0"}:
                    bad.append(f"{where}: spanId {s.get('spanId')}")
                if "parentSpanId" in s and not HEX16.match(s["parentSpanId"]):
                    bad.append(f"{where}: parentSpanId {s['parentSpanId']}")
                if not s.get("name"):
                    bad.append("a span without a name")
                if s.get("kind") not in (1, 2, 3, 4, 5):
                    bad.append(f"{where}: kind {s.get('kind')}")
                for f in ("startTimeUnixNano", "endTimeUnixNano"):
                    if not isinstance(s.get(f), str) or not DIGITS.match(s[f]):
                        bad.append(f"{where}: {f} {s.get(f)!r} is not a decimal string")
                if int(s.get("endTimeUnixNano", 0)) < int(s.get("startTimeUnixNano", 0)):
                    bad.append(f"{where}: ends before it starts")
                for a in s.get("attributes", []):
                    if not isinstance(a.get("key"), str) or not check_any_value(a.get("value")):
                        bad.append(f"{where}: attribute {a}")
                for e in s.get("events", []):
                    if not isinstance(e.get("timeUnixNano"), str) or not DIGITS.match(e["timeUnixNano"]) or not e.get("name"):
                        bad.append(f"{where}: event {e}")
                    if e.get("name") == "exception" and not {"exception.type", "exception.message"} <= set(attrs(e["attributes"])):
                        bad.append(f"{where}: exception event without type and message")
                if s.get("status", {}).get("code") not in (0, 1, 2):
                    bad.append(f"{where}: status {s.get('status')}")
    return bad


def run_work(run_id, env=None):
    prog = program("work.flow", WORK)
    return flow("run", prog, "--store", store(), "--run-id", run_id, env=env)


@case
def otlp_fields():
    r = run_work("w")
    check("the program runs and fails at its last retry", r.returncode == 1 and "caught http" in r.stdout, r.stderr)
    t, request = otlp("w")
    check("flow trace --format otlp writes JSON", t.returncode == 0 and request is not None, t.stderr)
    problems = spec_problems(request)
    check("every field follows OTLP/JSON (hex ids of 32 and 16 digits, times as decimal strings, typed values)",
          not problems, problems)
    resource = attrs(request["resourceSpans"][0]["resource"]["attributes"])
    check("the resource names the service and the run",
          resource.get("service.name") == ("stringValue", "flow") and resource.get("flow.run_id") == ("stringValue", "w"),
          resource)
    spans = spans_of(request)
    ids = {s["spanId"]: s for s in spans}
    roots = [s for s in spans if "parentSpanId" not in s]
    check("span ids are unique; one trace id", len(ids) == len(spans) and len({s["traceId"] for s in spans}) == 1)
    check("the run is the one root span; every other span's parent is in the trace",
          len(roots) == 1 and roots[0]["name"] == "run work.flow" and
          all(s["parentSpanId"] in ids for s in spans if s is not roots[0]), [(s["name"], s.get("parentSpanId")) for s in spans])
    by_name = {}
    for s in spans:
        by_name.setdefault(s["name"], []).append(s)
    fetch, sleep = by_name["step fetch"][0], by_name["sleep"][0]
    check("an effect inside a step is the step's child; the step is the run's",
          sleep["parentSpanId"] == fetch["spanId"] and fetch["parentSpanId"] == roots[0]["spanId"])
    task = by_name["task 1"][0]
    check("a task's effects are children of the task's span", by_name["log.info"][0]["parentSpanId"] == task["spanId"]
          and task["parentSpanId"] == roots[0]["spanId"])
    # (less a millisecond: the wait's end is set on the millisecond clock)
    check("a wait lasts what it waited (300 ms, to the millisecond)",
          int(sleep["endTimeUnixNano"]) - int(sleep["startTimeUnixNano"]) >= 299_000_000, sleep)
    check("times are to the microsecond, not rounded to milliseconds",
          any(int(s["startTimeUnixNano"]) % 1_000_000 != 0 for s in spans))
    failed = by_name["step flaky"][0]
    get = [s for s in by_name["GET"] if s["parentSpanId"] == failed["spanId"]]
    exc = [e for e in get[0]["events"] if e["name"] == "exception"] if get else []
    check("a failed effect has status ERROR and an exception event (type, message)",
          get and get[0]["status"]["code"] == 2 and get[0]["kind"] == 3 and exc and
          attrs(exc[0]["attributes"])["exception.type"] == ("stringValue", "http"), get)
    check("a step that did not complete has status ERROR", failed["status"]["code"] == 2, failed)
    again = by_name["step again"]
    check("a retried step's second attempt carries a retry event",
          len(again) == 2 and any(e["name"] == "retry" for e in again[1].get("events", [])), again)
    check("the failed run's span has status ERROR and an exception event",
          roots[0]["status"]["code"] == 2 and any(e["name"] == "exception" for e in roots[0].get("events", [])), roots[0])


@case
def genai_llm_chat():
    base = fake_services("--llm-fail", "1")
    prog = program("chat.flow", '''
let prompt = "Review this: tests passed"
let answer = retry(attempts: 3, backoff: 10ms) {
  llm.chat({model: "gpt-test", messages: [{role: "user", content: prompt}]})
}
print(answer.content)
''')
    env = dict(os.environ, FLOW_LLM_BASE_URL=base)
    env.pop("OPENAI_API_KEY", None)
    r = flow("run", prog, "--store", store(), "--run-id", "chat", env=env)
    check("the model call succeeds after a 429", r.returncode == 0 and r.stdout.startswith("LGTM"), r.stdout + r.stderr)
    t, request = otlp("chat")
    check("its trace follows OTLP/JSON", t.returncode == 0 and not spec_problems(request), t.stderr)
    chats = [s for s in spans_of(request) if s["name"] == "chat gpt-test"]
    check("each llm.chat attempt is a span named `chat MODEL`, kind CLIENT", len(chats) == 2 and
          all(s["kind"] == 3 for s in chats), [s["name"] for s in spans_of(request)])
    ok = attrs(chats[-1]["attributes"])
    prompt_tokens = len("Review this: tests passed") // 4
    check("the GenAI attributes: operation, request and response model, input and output tokens",
          ok.get("gen_ai.operation.name") == ("stringValue", "chat") and
          ok.get("gen_ai.request.model") == ("stringValue", "gpt-test") and
          ok.get("gen_ai.response.model") == ("stringValue", "gpt-test") and
          ok.get("gen_ai.usage.input_tokens") == ("intValue", str(prompt_tokens)) and
          ok.get("gen_ai.usage.output_tokens") == ("intValue", "17"), ok)
    first = chats[0]
    check("the rate-limited attempt is an error with an exception event; the retry says it is one",
          first["status"]["code"] == 2 and any(e["name"] == "exception" for e in first.get("events", [])) and
          any(e["name"] == "retry" for e in chats[1].get("events", [])), chats)


@case
def chrome_form():
    run_work("c")
    r = flow("trace", "c", "--store", store())
    trace = json.loads(r.stdout)
    events = trace["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    check("the Chrome form names its tracks: the top level and each task",
          sorted(names.values()) == ["task 1", "top level"], names)
    xs = [e for e in events if e["ph"] == "X"]
    check("times are integers in microseconds, not milliseconds times 1000",
          all(isinstance(e["ts"], int) for e in xs) and any(e["ts"] % 1000 != 0 for e in xs))
    sleep = [e for e in xs if e["name"] == "sleep" and e["tid"] == 1]
    check("a wait is drawn as a wait, for as long as it waited",
          sleep and sleep[0]["cat"] == "wait" and sleep[0]["dur"] >= 299_000, sleep)
    failed = [e for e in xs if e["name"] == "step flaky [failed]"]
    check("a failed step is drawn as failed", failed and failed[0]["args"]["state"] == "failed", [e["name"] for e in xs])
    check("errors are instant events", any(e["ph"] == "i" and e["name"] == "exception" for e in events))


@case
def suspended_wait_and_unfinished_step():
    prog = program("wait.flow", 'step "approval" {\n  let v = signal.wait("go")\n  print(v)\n}\n')
    r = flow("run", prog, "--store", store(), "--run-id", "sw")
    check("the run suspends in its wait", r.returncode == 75, r.stderr)
    trace = json.loads(flow("trace", "sw", "--store", store()).stdout)
    xs = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    check("a step still open is drawn as unfinished",
          any(e["name"] == "step approval [unfinished]" and e["args"]["state"] == "unfinished" for e in xs),
          [e["name"] for e in xs])
    time.sleep(0.4)
    flow("signal", "sw", "go", '"yes"', "--store", store())
    r = flow("resume", "sw", "--store", store())
    check("the resumed run completes", r.returncode == 0 and r.stdout == "yes\n", r.stderr)
    trace = json.loads(flow("trace", "sw", "--store", store()).stdout)
    wait = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["name"] == "signal.wait"]
    check("the wait, begun before the suspension, is drawn from its start to the signal (400 ms and more)",
          wait and wait[0]["cat"] == "wait" and wait[0]["dur"] >= 399_000, wait)


@case
def detached_sleep_drawn_whole():
    """A sleep that suspended the run (--detach) and was resumed when due: drawn for its
    whole length, not for the moment the resumed process took to see it was over."""
    prog = program("nap.flow", 'sleep(500ms)\nprint("awake")\n')
    r = flow("run", prog, "--store", store(), "--run-id", "nap", "--detach")
    check("the run suspends in its sleep", r.returncode == 75, r.stderr)
    time.sleep(0.6)
    r = flow("resume", "nap", "--store", store())
    check("the resumed run completes", r.returncode == 0 and r.stdout == "awake\n", r.stderr)
    trace = json.loads(flow("trace", "nap", "--store", store()).stdout)
    sleep = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["name"] == "sleep"]
    check("the sleep is drawn from its start (500 ms and more)", sleep and sleep[0]["dur"] >= 499_000, sleep)


class Receiver(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Receiver.received.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass


@case
def live_export():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, FLOW_OTLP_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        r = run_work("live", env=env)
    finally:
        server.shutdown()
    check("a run with FLOW_OTLP_ENDPOINT runs as without", r.returncode == 1 and "caught http" in r.stdout and
          "warning" not in r.stderr, r.stderr)
    posts = Receiver.received
    check("the spans were POSTed to /v1/traces as application/json",
          posts and all(p == "/v1/traces" and ct == "application/json" for p, ct, _ in posts), [p[:2] for p in posts])
    requests = [json.loads(b) for _, _, b in posts]
    problems = [p for q in requests for p in spec_problems(q)]
    check("what was sent follows OTLP/JSON", not problems, problems)
    live = {s["spanId"]: s for q in requests for s in spans_of(q)}
    _, stored = otlp("live")
    offline = {s["spanId"]: s for s in spans_of(stored)}
    check("the collector got every span of the run, with the ids and parents flow trace gives",
          set(live) == set(offline) and
          all(live[i].get("parentSpanId") == offline[i].get("parentSpanId") and live[i]["traceId"] == offline[i]["traceId"]
              for i in live), sorted(set(offline) ^ set(live)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MANY = 'for i in range(40) {\n  step "s${i}" { time.now() }\n}\nprint("done")\n'


@case
def unreachable_collector():
    prog = program("many.flow", MANY)
    env = dict(os.environ, FLOW_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    r = flow("run", prog, "--store", store(), "--run-id", "refused", env=env)
    check("a collector that refuses connections: the run completes, with one warning",
          r.returncode == 0 and r.stdout == "done\n" and r.stderr.count("cannot send spans") == 1, r.stderr)
    # A collector that accepts connections and never answers: each POST waits for its
    # timeout. Were spans sent on the run's thread, 40 steps would wait 40 timeouts (80 s
    # and more, past this call's limit); sent in the background, the run does not wait.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        env = dict(os.environ, FLOW_OTLP_ENDPOINT=f"http://127.0.0.1:{silent.getsockname()[1]}")
        r = flow("run", prog, "--store", store(), "--run-id", "silent", env=env, timeout=30)
    finally:
        silent.close()
    check("a collector that never answers: the run completes all the same, with one warning",
          r.returncode == 0 and r.stdout == "done\n" and r.stderr.count("warning:") == 1, r.stderr)


if __name__ == "__main__":
    main()
