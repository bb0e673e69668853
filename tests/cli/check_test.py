#!/usr/bin/env python3
"""flow check (issue 13 point 4): errors and warnings before running, as text and as JSON
for editors and CI; and programs of several files (point 1) through the command line: a
resumed run keeps the code of every file it started with, inspect names each frame's file."""
import json, os, re, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import case, check, flow, main, program, store, tmp  # noqa: E402

BROKEN = """import "lib/util.flow" as util
fn f(unused_param) {
  let never = 1
  let _kept = 2
  return 3
  print("after return")
}
print(len(1, 2), http.gett("x"), "s".uper(), [1].slice(), {a: 1}.nope(), util.missing)
let m = {double: fn(x) { return x * 2 }}
print(m.double(2), m.anything_at_all(1, 2, 3))
"""


@case
def check_json_gives_each_diagnostic_as_an_object():
    os.makedirs(tmp("lib"), exist_ok=True)
    program("lib/util.flow", "fn helper() {\n  let unused_in_module = 1\n  return 2\n}\n")
    path = program("broken.flow", BROKEN)
    p = flow("check", "--json", path)
    check("exit 2: there are errors", p.returncode == 2, f"exit {p.returncode}: {p.stderr}")
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    check("every object has file, line, column, severity and message",
          lines and all(set(d) == {"file", "line", "column", "severity", "message"} for d in lines), p.stdout)
    got = {(os.path.basename(d["file"]), d["line"], d["column"], d["severity"], d["message"]) for d in lines}
    want = {
        ("util.flow", 2, 7, "warning", "`unused_in_module` is never used (name it `_unused_in_module` if that is meant)"),
        ("broken.flow", 3, 7, "warning", "`never` is never used (name it `_never` if that is meant)"),
        ("broken.flow", 6, 3, "warning", "unreachable code: it follows the `return` at line 5"),
        ("broken.flow", 8, 7, "error", "`len` takes 1 argument, got 2"),
        ("broken.flow", 8, 23, "error", "unknown function `http.gett`"),
        ("broken.flow", 8, 38, "error", "a string has no method `uper`"),
        ("broken.flow", 8, 50, "error", "list.slice() takes 1 or 2 arguments, got 0"),
        ("broken.flow", 8, 66, "error", "a map has no method `nope`"),
        ("broken.flow", 8, 79, "error", "`util` (lib/util.flow) has no top-level `missing`"),
    }
    check("the diagnostics are exactly these (a map's own function is not a method to check)", got == want,
          f"missing {want - got}\nextra {got - want}")
    check("nothing on stderr", p.stderr == "", p.stderr)
    text = flow("check", path)
    check("without --json: the same as text, with a count", text.returncode == 2 and
          "broken.flow:8:38: error: a string has no method `uper`" in text.stderr and
          "lib/util.flow:2:7: warning: `unused_in_module` is never used" in text.stderr and
          "6 errors, 3 warnings" in text.stderr, text.stderr)


@case
def warnings_do_not_stop_a_program():
    path = program("w.flow", "fn f() {\n  let x = 1\n  return 2\n}\nprint(f())\n")
    p = flow("check", "--json", path)
    check("check --json: exit 0 with one warning", p.returncode == 0 and len(p.stdout.splitlines()) == 1 and
          json.loads(p.stdout)["severity"] == "warning", f"exit {p.returncode}: {p.stdout}{p.stderr}")
    ok = flow("check", "--json", program("ok.flow", "print(1)\n"))
    check("a clean program: no output, exit 0", ok.returncode == 0 and ok.stdout == "", ok.stdout)
    run = flow("run", "--ephemeral", path, env=dict(os.environ, FLOW_CACHE_DIR=""))
    check("run: the warning on stderr, the program runs", run.returncode == 0 and run.stdout == "2\n" and
          "w.flow:2:7: warning: `x` is never used" in run.stderr, f"exit {run.returncode}: {run.stdout}{run.stderr}")
    missing = flow("check", "--json", tmp("absent.flow"))
    check("an unreadable file: exit 2 and a message", missing.returncode == 2 and "absent.flow" in missing.stderr,
          missing.stderr)


@case
def a_resumed_run_keeps_the_code_of_every_file():
    os.makedirs(tmp("lib"), exist_ok=True)
    program("lib/wait.flow", 'fn wait_for(name) {\n  let v = signal.wait(name)\n  return "got ${v}"\n}\n')
    path = program("main.flow", 'import "lib/wait.flow" as w\nprint(w.wait_for("go"))\n')
    st = store()
    started = flow("run", path, "--store", st, "--run-id", "r1")
    check("the run suspends in the imported file's function", started.returncode == 75, started.stderr)
    inspect = flow("inspect", "r1", "--store", st)
    check("inspect names the imported file's global", "lib/wait.flow:wait_for" in inspect.stdout, inspect.stdout)
    program("lib/wait.flow", 'fn wait_for(name) {\n  return "CHANGED"\n}\n')
    flow("signal", "r1", "go", '"yes"', "--store", st)
    resumed = flow("resume", "r1", "--store", st)
    check("the resumed run runs the imported code it started with", resumed.returncode == 0 and
          resumed.stdout == "got yes\n", f"exit {resumed.returncode}: {resumed.stdout}{resumed.stderr}")
    check("resume says that the imported file changed since the run started",
          "lib/wait.flow has changed since the run started; the run continues on its stored code" in resumed.stderr,
          resumed.stderr)
    fresh = flow("run", "--ephemeral", path)
    check("a new run takes the file as it is now", fresh.stdout == "CHANGED\n", fresh.stdout + fresh.stderr)


@case
def a_trace_quotes_the_lines_of_imported_files_while_they_are_unchanged():
    os.makedirs(tmp("lib"), exist_ok=True)
    program("lib/fail.flow", 'fn fail_after(name) {\n  let v = signal.wait(name)\n  throw error("bad", "got ${v}")\n}\n')
    path = program("main.flow", 'import "lib/fail.flow" as f\nf.fail_after("go")\n')
    st = store()
    started = flow("run", path, "--store", st, "--run-id", "r1")
    check("the run suspends in the imported file", started.returncode == 75, started.stderr)
    flow("signal", "r1", "go", '"yes"', "--store", st)
    resumed = flow("resume", "r1", "--store", st)
    check("the imported file's line is quoted under its frame",
          re.search(r"at fail_after \(.*lib/fail.flow:3\)\n +3 \| +throw error", resumed.stderr) is not None, resumed.stderr)
    check("and the main file's", re.search(r"main.flow:2\)\n +2 \| f.fail_after", resumed.stderr) is not None, resumed.stderr)
    started = flow("run", path, "--store", st, "--run-id", "r2")
    program("lib/fail.flow", '// edited\nfn fail_after(name) {\n  throw error("other", "x")\n}\n')
    flow("signal", "r2", "go", '"yes"', "--store", st)
    resumed = flow("resume", "r2", "--store", st)
    check("an imported file changed since: its lines are not quoted, and it says so",
          "lib/fail.flow has changed since this code was compiled: its lines are not quoted" in resumed.stderr
          and "| " not in resumed.stderr.split("lib/fail.flow:3)")[1].split("\n  at")[0], resumed.stderr)


if __name__ == "__main__":
    main()
