"""`flow ui`'s JSON API without a browser (docs/ui.md): the shapes the pages and scripts
read, the token when bound beyond loopback, cross-site POSTs refused, actions that work."""
import json, os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from uilib import DONE_PROGRAM, FAILED_PROGRAM, FAILING_LINE, Ui, fill_store  # noqa: E402
from testlib import FLOW, case, check, flow, main, program, store, tmp  # noqa: E402

TOKEN = "t0ken-for-the-tests-0123456789"


def serve(*args, env=None):
    return Ui(fill_store(store()), *args, env=env)


@case
def runs_listing():
    ui = serve()
    try:
        status, _, data = ui.get("/api/runs")
        check("GET /api/runs answers 200", status == 200, status)
        by_id = {r["id"]: r for r in data["runs"]}
        check("it lists the three runs", set(by_id) == {"done-1", "failed-1", "waiting-1"}, list(by_id))
        check("with their statuses", (by_id["done-1"]["status"], by_id["failed-1"]["status"],
                                      by_id["waiting-1"]["status"]) == ("completed", "failed", "suspended"), by_id)
        check("a run has id, program, status, effects, times",
              all(k in by_id["failed-1"] for k in ("id", "program", "status", "effects", "created_ms", "updated_ms",
                                                   "detail", "args")), by_id["failed-1"])
        check("counts per status", data["counts"]["failed"] == 1 and data["counts"]["completed"] == 1 and
              data["counts"]["suspended"] == 1 and data["total"] == 3, data["counts"])
        _, _, failed = ui.get("/api/runs?status=failed")
        check("?status=failed lists only the failed run", [r["id"] for r in failed["runs"]] == ["failed-1"], failed)
        _, _, found = ui.get("/api/runs?q=waiting")
        check("?q= searches ids and programs", [r["id"] for r in found["runs"]] == ["waiting-1"], found)
        status, _, bad = ui.get("/api/runs?status=sleepy")
        check("an unknown status is a 400 with a message", status == 400 and "sleepy" in bad["error"], bad)
    finally:
        ui.stop()


@case
def failed_run_detail():
    ui = serve()
    try:
        status, _, r = ui.get("/api/runs/failed-1")
        check("GET /api/runs/ID answers 200", status == 200, status)
        e = r["error"]
        check("the error's kind and message", e["kind"] == "validation" and e["message"] == "order 42 has no items", e)
        check("its whole stack was kept", e["has_stack"] and len(e["stack"]) == 2, e)
        top = e["stack"][0]
        check("the innermost frame is validate at line 4", top["function"] == "validate" and top["line"] == 4, top)
        lines = {l["line"]: l["text"] for l in top["source"]}
        check("with the failing line's source text", lines.get(4) == FAILING_LINE, lines)
        check("the source is the one stored with the run; the file on disk is unchanged",
              r["source"]["available"] and r["source"]["file_on_disk"] == "unchanged", r["source"])
        check("a failed run cannot be resumed, cancelled or signalled, but can be forked and rerun",
              r["can"] == {"resume": False, "cancel": False, "signal": False, "fork": True, "rerun": True}, r["can"])
        check("it is no fork or rerun", r["origin"] is None, r["origin"])
        status, _, missing = ui.get("/api/runs/no-such-run")
        check("an unknown run is a 404", status == 404 and "error" in missing, missing)
    finally:
        ui.stop()


@case
def history_pages():
    path = program("many.flow", 'for i in range(30) { print("line ${i}") }\n')
    r = flow("run", path, "--store", store(), "--run-id", "many-1", "--durability", "async")
    ui = Ui(store())
    try:
        status, _, page = ui.get("/api/runs/many-1/history?offset=10&limit=5")
        check("GET history answers 200", status == 200 and r.returncode == 0, (status, r.stderr))
        check("it says the whole history's size", page["total"] == 30, page["total"])
        check("and gives the page asked for", [e["seq"] for e in page["entries"]] == [11, 12, 13, 14, 15], page)
        e = page["entries"][0]
        check("an entry has effect, state, key, times, args and result",
              (e["effect"], e["state"], e["idempotency_key"], e["args"]) == ("print", "done", "many-1/11", '["line 10"]')
              and "started_ms" in e and "duration_us" in e and "result" in e, e)
        _, _, tail = ui.get("/api/runs/many-1/history?offset=28&limit=100")
        check("the last page is short", [e["seq"] for e in tail["entries"]] == [29, 30], tail)
        _, _, output = ui.get("/api/runs/many-1/history?kind=output&offset=29")
        check("?kind=output keeps the prints, paged", output["total"] == 30 and
              [e["seq"] for e in output["entries"]] == [30], output)
        _, _, none = ui.get("/api/runs/many-1/history?kind=steps")
        check("?kind=steps of a run without steps is empty", none["total"] == 0 and none["entries"] == [], none)
        stepped = program("steps.flow", 'let a = step "fetch" { time.now() }\nprint("got it")\n')
        flow("run", stepped, "--store", store(), "--run-id", "steps-1")
        _, _, steps = ui.get("/api/runs/steps-1/history?kind=steps")
        check("?kind=steps keeps the step events", [(e["effect"], e["idempotency_key"]) for e in steps["entries"]]
              == [("step", "fetch"), ("step done", "fetch")], steps)
        _, _, effects = ui.get("/api/runs/steps-1/history?kind=effects")
        check("?kind=effects keeps the effects", [e["effect"] for e in effects["entries"]] == ["time.now", "print"],
              effects)
        status, _, bad = ui.get("/api/runs/many-1/history?offset=x")
        check("a bad offset is a 400", status == 400, bad)
    finally:
        ui.stop()


def global_json(state, name):
    return next((g["json"] for g in state["globals"] if g["name"] == name), None)


@case
def state_at_checkpoint():
    ui = serve()
    try:
        status, _, s = ui.get("/api/runs/waiting-1/state")
        check("GET state answers 200", status == 200, s)
        check("it has frames, globals, tasks and the checkpoint",
              all(k in s for k in ("frames", "globals", "tasks", "checkpoint", "effects_done")), s)
        check("the top frame is the script's", s["frames"][0]["function"] == "<script>", s["frames"])
        check("globals are JSON text", any(g["name"] == "ok" and g["json"] == "null" for g in s["globals"]), s["globals"])
        # done-1: total = 0, 0 + 0, 0 + 1, 1 + 2, with a print after each: 4 effects.
        _, _, last = ui.get("/api/runs/done-1/state")
        check("the last state has total 3", global_json(last, "total") == "3" and last["effects_done"] == 4, last)
        status, _, at = ui.get("/api/runs/done-1/state?at=2")
        check("?at=2 is the state right after effect 2 (total 1, as it was then)",
              status == 200 and global_json(at, "total") == "1" and at["shown_after_effect"] == 2
              and at["at_requested"] == 2 and not at["at_not_kept"], at)
        _, _, start = ui.get("/api/runs/done-1/state?at=0")
        check("?at=0 is the state before the first effect", start["shown_after_effect"] == 0, start)
        status, _, past = ui.get("/api/runs/done-1/state?at=5")
        check("?at= past the last effect is a 404", status == 404 and "error" in past, (status, past))
    finally:
        ui.stop()


@case
def live_run_read():
    """A run that a process executes now: its history and state are read from a snapshot
    its process sends (runtime/live.h), not refused."""
    ui = serve()
    path = program("ticks.flow", 'let n = 0\nfor i in range(80) {\n  n = n + 1\n  print(n)\n  sleep(50ms)\n}\n')
    p = subprocess.Popen([FLOW, "run", path, "--store", store(), "--run-id", "live-1"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        status, h = 0, {}
        while time.time() < deadline:
            status, _, h = ui.get("/api/runs/live-1/history")
            if status == 200 and h.get("total", 0) >= 5:
                break
            time.sleep(0.1)
        check("the history of a live run is read (200) as it grows", status == 200 and h.get("total", 0) >= 5, (status, h))
        status, _, st = ui.get("/api/runs/live-1/state")
        check("the state of a live run is read (200): n as it is now",
              status == 200 and st.get("live") and int(global_json(st, "n") or 0) >= 2, (status, st))
    finally:
        p.wait(timeout=60)
        ui.stop()


@case
def state_at_checkpoint_not_kept():
    path = program("kept.flow", DONE_PROGRAM)
    r = flow("run", path, "--store", store(), "--run-id", "last-only", "--keep-checkpoints", "last")
    ui = Ui(store())
    try:
        status, _, at = ui.get("/api/runs/last-only/state?at=2")
        check("a run that keeps only its last checkpoint shows that one for ?at=2, and says so",
              r.returncode == 0 and status == 200 and at["at_not_kept"] and at["shown_after_effect"] == 4
              and "after effect 2" in at["note"], (r.stderr, at))
    finally:
        ui.stop()


@case
def source_lines_are_the_runs():
    """The file on disk edited after the run failed: the page still quotes the line the run
    executed (the source stored with its code), and says the file changed."""
    ui = serve()
    try:
        path = ui.get("/api/runs/failed-1")[2]["program"]
        with open(path, "w") as f:
            f.write("// fixed\n// two lines added above\n" + FAILED_PROGRAM.replace(FAILING_LINE, '  print("order ${n} is fine")'))
        _, _, r = ui.get("/api/runs/failed-1")
        lines = {l["line"]: l["text"] for l in r["error"]["stack"][0]["source"]}
        check("line 4 is still the failing line the run executed", lines.get(4) == FAILING_LINE, lines)
        check("and the file on disk is said to have changed", r["source"]["file_on_disk"] == "changed", r["source"])
        _, _, src = ui.get("/api/runs/failed-1/source")
        check("GET source gives the stored lines", src["lines"][3] == FAILING_LINE and src["available"], src)
        compiled = tmp("compiled.flowc")
        c = flow("compile", path, "-o", compiled)
        flow("run", compiled, "--store", store(), "--run-id", "bytecode-1")
        _, _, b = ui.get("/api/runs/bytecode-1")
        check("a run started from a .flowc has no source lines, and says so", c.returncode == 0 and
              not b["source"]["available"] and ".flowc" in b["source"]["note"], (c.stderr, b["source"]))
    finally:
        ui.stop()


@case
def logs_in_output_filter():
    path = program("logs.flow", 'log.info("fetched", {page: 3})\nlet t = time.now()\nlog.warn("slow")\n'
                                'print("done")\nlog.error("oops", {code: 7})\n')
    r = flow("run", path, "--store", store(), "--run-id", "logs-1")
    ui = Ui(store())
    try:
        _, _, output = ui.get("/api/runs/logs-1/history?kind=output")
        check("?kind=output (the page's \"output and logs\") shows the log lines and prints, not other effects",
              r.returncode == 0 and [e["effect"] for e in output["entries"]] ==
              ["log.info", "log.warn", "print", "log.error"], (r.stderr, output))
        check("with their messages", "fetched" in output["entries"][0]["args"], output["entries"][0])
    finally:
        ui.stop()


@case
def secrets_masked():
    os.environ["FLOW_UI_TEST_SECRET"] = "hunter2-very-secret"
    path = program("secret.flow", 'let key = secret("FLOW_UI_TEST_SECRET")\nlet header = "Bearer ${key}"\n'
                                  'print(header)\nlet ok = signal.wait("go", {timeout: 1h})\n')
    flow("run", path, "--store", store(), "--run-id", "secret-1", "--detach")
    ui = Ui(store())
    try:
        bodies = [ui.get(p)[2] for p in ("/api/runs/secret-1", "/api/runs/secret-1/history",
                                         "/api/runs/secret-1/state", "/api/runs")]
        text = repr(bodies)
        check("the state shows the local masked", "Bearer ***" in text, text[:2000])
        check("no answer holds the secret", "hunter2-very-secret" not in text, text[:2000])
    finally:
        ui.stop()
        del os.environ["FLOW_UI_TEST_SECRET"]


@case
def signal_delivers():
    ui = serve()
    try:
        status, _, sent = ui.post("/api/runs/waiting-1/signal", {"name": "approve", "value": True})
        check("POST signal answers 200", status == 200 and sent["sent"], sent)
        check("it says the run waits for it", sent["waiting_for_it"], sent)
        status, _, started = ui.post("/api/runs/waiting-1/resume")
        check("POST resume starts an action (202)", status == 202 and started["action"], started)
        action = ui.wait_action(started["action"])
        check("the resume (a child process) ends with exit 0", action and action["exit_code"] == 0, action)
        check("the run took the signal's value", action and "approved: true" in action["output"], action)
        _, _, r = ui.get("/api/runs/waiting-1")
        check("and completed", r["status"] == "completed", r["status"])
        status, _, late = ui.post("/api/runs/waiting-1/signal", {"name": "approve"})
        check("a run that ended takes no signal (409)", status == 409, late)
        status, _, bad = ui.post("/api/runs/waiting-1/signal", b'{"name": ', content_type="application/json")
        check("a malformed body is a 400", status == 400, bad)
    finally:
        ui.stop()


@case
def resume_outlives_the_server():
    """A resume started from the UI is a process of its own: stopping the server does not
    stop the run, nor fail its prints (its output is a file, not a pipe to the server)."""
    fifo = tmp("fifo")
    os.mkfifo(fifo)
    path = program("fifo.flow", 'let ok = signal.wait("approve", {timeout: 1h})\nlet text = fs.read(args.fifo)\n'
                                'print("read ${text}")\nprint("done")\n')
    flow("run", path, "--store", store(), "--run-id", "fifo-1", "--detach", "--arg", "fifo=" + fifo)
    ui = Ui(store())
    try:
        ui.post("/api/runs/fifo-1/signal", {"name": "approve", "value": True})
        status, _, started = ui.post("/api/runs/fifo-1/resume")
        check("POST resume starts it", status == 202, started)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ui.get("/api/runs/fifo-1")[2]["live"]:
            time.sleep(0.05)
        check("the resumed run is live (blocked reading the FIFO)", ui.get("/api/runs/fifo-1")[2]["live"])
    finally:
        ui.stop()
    with open(fifo, "w") as f:  # unblocks it, the server gone
        f.write("hello")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and status_of("fifo-1") == "running":
        time.sleep(0.05)
    check("the run completed after the server stopped", status_of("fifo-1") == "completed", status_of("fifo-1"))
    prints = [e["args"] for e in json.loads(flow("history", "fifo-1", "--json", "--store", store()).stdout)
              if e["effect"] == "print"]
    check("its prints were done", prints == ['["read hello"]', '["done"]'], prints)


def status_of(run_id):
    return {r["id"]: r["status"] for r in json.loads(flow("runs", "--json", "--store", store()).stdout)}.get(run_id)


@case
def cancel_action():
    ui = serve()
    try:
        status, _, started = ui.post("/api/runs/waiting-1/cancel")
        action = ui.wait_action(started["action"])
        check("POST cancel runs flow cancel", status == 202 and action and action["exit_code"] == 0, action)
        _, _, r = ui.get("/api/runs/waiting-1")
        check("the run is cancelled", r["status"] == "cancelled", r["status"])
    finally:
        ui.stop()


def origin_of(run_id):
    return {r["id"]: r.get("origin") for r in json.loads(flow("runs", "--json", "--store", store()).stdout)}.get(run_id)


def prints_of(run_id):
    """The prints of a run's history, and "fork" where a fork began."""
    return [json.loads(e["args"])[0] if e["effect"] == "print" else "fork"
            for e in json.loads(flow("history", run_id, "--json", "--store", store()).stdout)
            if e["effect"] in ("print", "fork")]


FORKED_PROGRAM = 'let answer = "draft"\nprint("got ${answer}")\nlet t = time.now()\nprint("final ${answer}")\n'


@case
def fork_at_a_checkpoint():
    path = program("fork.flow", FORKED_PROGRAM)
    flow("run", path, "--store", store(), "--run-id", "orig-1")
    ui = Ui(store())
    try:
        status, _, started = ui.post("/api/runs/orig-1/fork", {"at": 1, "set": {"answer": "edited"},
                                                                "run_id": "forked-1"})
        check("POST fork starts flow fork, naming the new run", status == 202 and started["new_run"] == "forked-1",
              started)
        action = ui.wait_action(started["action"])
        check("the fork (a child process) ends with exit 0", action and action["exit_code"] == 0, action)
        check("the fork completed", status_of("forked-1") == "completed", status_of("forked-1"))
        check("from the checkpoint after effect 1, with answer changed: it did not print `got` again",
              "final edited" in action["output"] and "got" not in action["output"], action["output"])
        check("its history: effect 1 is the original's, then the fork, then its own",
              prints_of("forked-1") == ["got draft", "fork", "final edited"], prints_of("forked-1"))
        check("the original is untouched", prints_of("orig-1") == ["got draft", "final draft"], prints_of("orig-1"))
        check("flow runs --json shows its origin", origin_of("forked-1") == {"kind": "fork", "run": "orig-1", "effect": 1},
              origin_of("forked-1"))
        _, _, r = ui.get("/api/runs/forked-1")
        check("and so does its page's record", r["origin"] == {"kind": "fork", "run": "orig-1", "effect": 1}, r["origin"])
        status, _, started = ui.post("/api/runs/orig-1/fork", {})
        action = ui.wait_action(started["action"])
        check("without at or run_id: from the last checkpoint, with a fresh id", status == 202 and action and
              action["exit_code"] == 0 and origin_of(started["new_run"]) == {"kind": "fork", "run": "orig-1", "effect": 3},
              (started, action))
        for body in ({"at": -1}, {"at": "x"}, {"set": ["answer"]}, {"run_id": "../x"}, {"set": {"": 1}}):
            status, _, bad = ui.post("/api/runs/orig-1/fork", body)
            check(f"a bad fork body {json.dumps(body)} is a 400", status == 400 and "error" in bad, (status, bad))
    finally:
        ui.stop()


RERUN_PROGRAM = """let got = step "fetch" {
  print("fetching")
  42
}
if got > {limit} {
  throw error("validation", "too big: ${got}")
}
print("ok ${got}")
"""


@case
def rerun_after_a_fix():
    path = program("rerun.flow", RERUN_PROGRAM.replace("{limit}", "10"))
    r = flow("run", path, "--store", store(), "--run-id", "broken-1")
    ui = Ui(store())
    try:
        check("the run failed", r.returncode == 1 and status_of("broken-1") == "failed", r.stderr)
        status, _, started = ui.post("/api/runs/broken-1/rerun", {"run_id": "same-code-1"})
        action = ui.wait_action(started["action"])
        check("POST rerun without the file reruns the stored code: it fails again", status == 202 and action
              and action["exit_code"] == 1 and status_of("same-code-1") == "failed", (started, action))
        with open(path, "w") as f:
            f.write(RERUN_PROGRAM.replace("{limit}", "100"))
        _, _, detail = ui.get("/api/runs/broken-1")
        check("the page says the file changed", detail["source"]["file_on_disk"] == "changed", detail["source"])
        status, _, started = ui.post("/api/runs/broken-1/rerun", {"use_file_on_disk": True, "run_id": "fixed-1"})
        action = ui.wait_action(started["action"])
        check("POST rerun with the file on disk (the fix) completes", status == 202 and started["new_run"] == "fixed-1"
              and action and action["exit_code"] == 0 and status_of("fixed-1") == "completed", (started, action))
        check("its completed step was reused, not run again", prints_of("fixed-1") == ["ok 42"], prints_of("fixed-1"))
        check("flow runs --json shows it is a rerun of broken-1", (origin_of("fixed-1") or {}).get("kind") == "rerun"
              and origin_of("fixed-1")["run"] == "broken-1", origin_of("fixed-1"))
        status, _, bad = ui.post("/api/runs/broken-1/rerun", {"use_file_on_disk": "yes"})
        check("a bad rerun body is a 400", status == 400, (status, bad))
    finally:
        ui.stop()


@case
def cross_site_posts_refused():
    ui = serve()
    try:
        attempts = {
            "another Origin": {"Origin": "http://evil.example"},
            "Sec-Fetch-Site: cross-site": {"Sec-Fetch-Site": "cross-site"},
            "Sec-Fetch-Site: same-site": {"Sec-Fetch-Site": "same-site"},
        }
        for name, headers in attempts.items():
            status, _, body = ui.post("/api/runs/waiting-1/signal", {"name": "approve", "value": 1}, headers=headers)
            check(f"a POST with {name} is refused (403)", status == 403 and "refused" in body["error"], (status, body))
        status, _, body = ui.post("/api/runs/waiting-1/signal", b"name=approve", content_type="application/x-www-form-urlencoded")
        check("a form POST (not JSON) is refused (403)", status == 403, (status, body))
        status, _, body = ui.post("/api/runs/waiting-1/resume", b"{}", content_type="text/plain")
        check("a text/plain POST is refused (403)", status == 403, (status, body))
        status, _, actions = ui.get("/api/actions")
        check("nothing was started", actions["actions"] == [], actions)
        status, _, r = ui.get("/api/runs/waiting-1")
        check("the run still waits", r["status"] == "suspended", r)
        h = flow("history", "waiting-1", "--json", "--store", store())
        check("and no signal reached it", '"approve"' not in flow("inspect", "waiting-1", "--store", store()).stdout
              and h.returncode == 0, h.stdout)
        status, _, ok = ui.post("/api/runs/waiting-1/signal", {"name": "approve", "value": 1},
                                headers={"Origin": ui.base.replace("127.0.0.1", "127.0.0.1"), "Sec-Fetch-Site": "same-origin"})
        check("the same POST from the page's own origin is taken", status == 200, (status, ok))
    finally:
        ui.stop()


@case
def foreign_host_refused():
    ui = serve()
    try:
        status, _, _ = ui.get("/api/runs", headers={"Host": "evil.example:80"})
        check("bound to loopback, a request for another host name is refused (DNS rebinding)", status == 421, status)
        status, _, _ = ui.get("/api/runs", headers={"Host": "localhost:" + ui.base.rsplit(":", 1)[1]})
        check("localhost:PORT is served", status == 200, status)
    finally:
        ui.stop()


@case
def taken_port_refused():
    ui = serve()
    try:
        port = ui.base.rsplit(":", 1)[1]
        r = subprocess.run([FLOW, "ui", "--store", store(), "--port", port], capture_output=True, text=True, timeout=30)
        check("a second flow ui on a taken port fails (exit 2), it does not share the port",
              r.returncode == 2 and "cannot listen" in r.stderr, r.stderr)
    finally:
        ui.stop()


@case
def token_required_beyond_loopback():
    env = {k: v for k, v in os.environ.items() if k != "FLOW_UI_TOKEN"}
    r = subprocess.run([FLOW, "ui", "--store", store(), "--bind", "0.0.0.0", "--port", "0"], capture_output=True,
                       text=True, timeout=30, env=env)
    check("binding 0.0.0.0 without a token is refused (exit 2)", r.returncode == 2 and "token" in r.stderr, r.stderr)
    r = subprocess.run([FLOW, "ui", "--store", store(), "--bind", "0.0.0.0", "--port", "0", "--token", "short"],
                       capture_output=True, text=True, timeout=30, env=env)
    check("a short token is refused (exit 2)", r.returncode == 2 and "at least" in r.stderr, r.stderr)


@case
def token_checked_on_every_request():
    env = dict(os.environ, FLOW_UI_TOKEN=TOKEN)
    ui = serve("--bind", "0.0.0.0", env=env)
    try:
        for path in ("/api/runs", "/api/runs/failed-1", "/api/runs/failed-1/history", "/", "/assets/run.js"):
            status, _, _ = ui.get(path)
            check(f"GET {path} without the token is 401", status == 401, status)
        status, _, _ = ui.get("/api/runs", headers={"Authorization": "Bearer wrong-token-wrong-token"})
        check("a wrong token is 401", status == 401, status)
        status, _, data = ui.get("/api/runs", headers={"Authorization": "Bearer " + TOKEN})
        check("Authorization: Bearer TOKEN is served", status == 200 and data["total"] == 3, status)
        status, _, _ = ui.post("/api/runs/waiting-1/signal", {"name": "approve"})
        check("a POST without the token is 401", status == 401, status)
        status, headers, _ = ui.get("/?token=" + TOKEN)
        cookie = headers.get("Set-Cookie", "")
        check("?token= sets an HttpOnly, SameSite=Strict cookie and redirects", status == 303 and
              cookie.startswith("flow_ui_token=" + TOKEN) and "HttpOnly" in cookie and "SameSite=Strict" in cookie,
              (status, headers))
        check("to the address without the token", headers.get("Location") == "/", headers)
        status, _, page = ui.get("/", headers={"Cookie": "flow_ui_token=" + TOKEN})
        check("the cookie opens the page", status == 200 and "<title>Flow runs</title>" in page, status)
        status, headers, _ = ui.get("//evil.example/x?token=" + TOKEN)
        check("the redirect stays on this server (not //evil.example)",
              status == 303 and headers.get("Location") == "/evil.example/x", headers)
        status, headers, _ = ui.get("/a%0d%0aX-Injected:%201?token=" + TOKEN)
        check("a line end in the path breaks no header", "X-Injected" not in headers and status != 303, headers)
        status, _, _ = ui.get("/?token=wrong-token-wrong-token")
        check("a wrong ?token= is 401", status == 401, status)
    finally:
        ui.stop()


@case
def pages_are_inert():
    ui = serve()
    try:
        status, headers, page = ui.get("/runs/failed-1")
        check("the run page is served", status == 200 and "run.js" in page, status)
        csp = headers.get("Content-Security-Policy", "")
        check("scripts only from the server itself (no inline script runs)",
              "script-src 'self'" in csp and "unsafe-inline" not in csp, csp)
        check("not framed, not sniffed", headers.get("X-Frame-Options") == "DENY" and
              headers.get("X-Content-Type-Options") == "nosniff", headers)
        status, _, _ = ui.get("/assets/http_adapter.so")
        check("only the pages are served, not the adapter module", status == 404, status)
    finally:
        ui.stop()


@case
def binary_does_not_link_httplib():
    needed = subprocess.run(["readelf", "-d", FLOW], capture_output=True, text=True).stdout
    check("flow itself needs no cpp-httplib, OpenSSL or zlib at start (flow ui loads them)",
          "NEEDED" in needed and not any(lib in needed for lib in ("httplib", "libssl", "libcrypto", "libz")), needed)


if __name__ == "__main__":
    main()
