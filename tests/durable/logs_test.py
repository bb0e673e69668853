#!/usr/bin/env python3
"""Logs (issue 11, point 6): log.info/warn/error are recorded once in the run's history
(not again on resume), shown live on stderr, listed by `flow logs` (text, --json,
--follow); `flow history --json` gives whole results, not 200-byte previews."""
import json, os, re, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, add_case, case, check, crash_then_resume, flow, history, main, program, status, store  # noqa: E402

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN|ERROR) ")

LOGGING = '''
log.info("start", {n: 1})
for i in range(3) {
  log.info("item", {i: i, who: "a b"})
}
log.warn("careful", {token: secret("LOGS_TEST_TOKEN"), tags: ["x", "y"]})
log.error("bad thing")
print("done")
'''
EXPECTED = [
    'INFO start n=1',
    'INFO item i=0 who="a b"',
    'INFO item i=1 who="a b"',
    'INFO item i=2 who="a b"',
    'WARN careful token=*** tags=["x","y"]',
    'ERROR bad thing',
]
ENV = dict(os.environ, LOGS_TEST_TOKEN="s3cr3t-value")


def logs(run_id, *args):
    return flow("logs", run_id, "--store", store(), *args, env=ENV)


def bodies(text):
    """The lines of `flow logs` (or stderr) that are log lines, without their time."""
    return [LINE.sub(lambda m: m.group(1) + " ", l) for l in text.splitlines() if LINE.match(l)]


def logged_once_across_crash(point):
    prog = program("logging.flow", LOGGING)
    run_id = f"crash-{point}"
    first, second = crash_then_resume(prog, run_id, f"3:{point}", env=ENV)
    r = logs(run_id)
    check(f"killed at the third log call ({point}) and resumed, each line is in the history once, in order",
          first.returncode == -9 and second.returncode == 0 and bodies(r.stdout) == EXPECTED,
          f"{first.returncode} {second.returncode} {r.stdout} {r.stderr} {second.stderr}")
    # The process wrote each line live to stderr as it logged it; lines it had logged
    # (and checkpointed) before it was killed are not logged again by the resume.
    live = bodies(first.stderr) + bodies(second.stderr)
    done_before = 3 if point == "after-checkpoint" else 2
    check(f"stderr of the killed and the resumed process: the resume logs only what was not recorded ({point})",
          bodies(second.stderr) == EXPECTED[done_before:] and "s3cr3t" not in first.stderr + second.stderr,
          live)


add_case("logged_once_after_checkpoint", logged_once_across_crash, "after-checkpoint")
add_case("logged_once_after_effect", logged_once_across_crash, "after-effect")


@case
def logs_text_and_json():
    prog = program("tasks.flow", LOGGING + '''
let t = spawn { log.info("in a task", {k: {a: 1}}) }
await t
''')
    r = flow("run", prog, "--store", store(), "--run-id", "lg", env=ENV)
    check("a run that logs completes; its stderr shows the lines readably",
          r.returncode == 0 and bodies(r.stderr)[:6] == EXPECTED, r.stderr)
    text = logs("lg")
    check("flow logs prints the lines in order, the task's marked with its path",
          text.returncode == 0 and bodies(text.stdout) == EXPECTED + ['INFO [task 1] in a task k={"a":1}'],
          text.stdout + text.stderr)
    check("flow logs never shows a secret's value", "s3cr3t" not in text.stdout + r.stderr, text.stdout)
    j = logs("lg", "--json")
    rows = [json.loads(l) for l in j.stdout.splitlines()]
    hist = {h["seq"]: h for h in history("lg")}
    check("flow logs --json: one object a line with time, level, msg, fields, seq, task",
          j.returncode == 0 and len(rows) == 7 and
          all(set(x) >= {"time", "level", "msg", "fields", "seq", "task"} for x in rows) and
          [x["level"] for x in rows] == ["info"] * 4 + ["warn", "error", "info"] and
          rows[1]["fields"] == {"i": 0, "who": "a b"} and rows[4]["fields"]["token"] == "***" and
          rows[6]["task"] == "1" and rows[0]["task"] == "" and
          all(hist[x["seq"]]["effect"] == "log." + x["level"] for x in rows), j.stdout + j.stderr)


@case
def log_argument_errors():
    prog = program("bad.flow", '''
try { log.info(42) } catch e { print(e.kind) }
try { log.warn("x", [1]) } catch e { print(e.kind) }
try { log.error("x", {f: fn() { 1 }}) } catch e { print(e.kind) }
log.info("fine", null)
''')
    r = flow("run", prog, "--store", store(), "--run-id", "bad")
    check("a message that is not a string, fields that are not a map or not JSON raise `type`",
          r.returncode == 0 and r.stdout == "type\ntype\ntype\n" and bodies(r.stderr) == ["INFO fine"], r.stdout + r.stderr)
    check("only the call that logged is a log line", bodies(logs("bad").stdout) == ["INFO fine"], logs("bad").stdout)


def wait_for_record(run_id):
    for _ in range(300):
        if status(store(), run_id):
            return True
        time.sleep(0.05)
    return False


def follow_until(prog_text, run_id, run_args=()):
    prog = program(f"{run_id}.flow", prog_text)
    runner = subprocess.Popen([FLOW, "run", prog, "--store", store(), "--run-id", run_id, *run_args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    found = wait_for_record(run_id)
    follower = subprocess.Popen([FLOW, "logs", run_id, "--follow", "--store", store()],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = follower.communicate(timeout=60)
    runner.communicate(timeout=60)
    return found, follower.returncode, runner.returncode, out, err


@case
def follow_to_the_end():
    found, code, run_code, out, err = follow_until('''
log.info("one")
sleep(400ms)
log.info("two")
sleep(400ms)
log.info("three")
''', "fol")
    check("flow logs --follow prints every line of a running run and exits when it completes",
          found and code == 0 and run_code == 0 and bodies(out) == ["INFO one", "INFO two", "INFO three"],
          f"{code} {run_code} {out} {err}")


@case
def follow_to_a_suspension():
    found, code, run_code, out, err = follow_until('''
log.info("before")
sleep(300ms)
log.warn("waiting", {for: "go"})
let v = signal.wait("go")
log.info("after", {v: v})
''', "sus")
    check("flow logs --follow stops when the run suspends, with the lines logged so far",
          found and code == 0 and run_code == 75 and bodies(out) == ["INFO before", 'WARN waiting for=go'],
          f"{code} {run_code} {out} {err}")


@case
def history_json_whole():
    big = "x" * 500 + "é" * 100
    prog = program("big.flow", 'let v = env.get("BIG_VALUE")\nlog.info(v, {copy: v})\nprint(len(v))\n')
    r = flow("run", prog, "--store", store(), "--run-id", "big", env=dict(os.environ, BIG_VALUE=big))
    hist = history("big")
    env_get = [h for h in hist if h["effect"] == "env.get"]
    logged = [h for h in hist if h["effect"] == "log.info"]
    check("flow history --json gives a result longer than 200 bytes whole",
          r.returncode == 0 and env_get and json.loads(env_get[0]["result"]) == big, env_get)
    check("... and whole arguments",
          logged and json.loads(logged[0]["args"]) == [big, {"copy": big}], logged)
    text = flow("history", "big", "--store", store()).stdout
    row = [l for l in text.splitlines() if "env.get" in l]
    check("the text form keeps previews", row and "..." in row[0] and len(row[0]) < 600, row)
    r = flow("logs", "big", "--store", store())
    check("flow logs shows the whole message", r.returncode == 0 and big in r.stdout, r.stdout[:300])


@case
def logs_errors():
    prog = program("quiet.flow", 'print("no logs")\n')
    flow("run", prog, "--store", store(), "--run-id", "quiet")
    r = flow("logs", "nosuch", "--store", store())
    check("flow logs of an unknown run fails with a message", r.returncode == 2 and "nosuch" in r.stderr, r.stderr)
    r = flow("logs", "quiet", "--store", store())
    check("a run that logged nothing has no log lines", r.returncode == 0 and r.stdout == "", r.stdout + r.stderr)


if __name__ == "__main__":
    main()
