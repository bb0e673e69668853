#!/usr/bin/env python3
"""flow test (issue 13 point 5): test blocks, assert and assert_eq, a virtual clock, and
signal.send, so that a path that waits for a person or for hours runs in milliseconds.
Each test runs in a VM of its own (the file's top-level code first): no test sees what
another changed. Exit 0 when all pass, 1 when one fails, 2 when a file does not compile."""
import os, re, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import case, check, flow, main, program, tmp  # noqa: E402

PASSING = """
let env = args.env ?? "dev"
let seen = []
fn approve(within) {
  seen.push("asked")
  let d = signal.wait("approve", {timeout: within})
  return d.ok
}
test "a sent signal is taken by the wait" {
  signal.send("approve", {ok: true})
  assert(approve(1h))
  assert_eq(seen, ["asked"])
}
test "each test starts from the file's top-level code again" {
  assert_eq(seen, [], "no state leaks from the test before")
  assert_eq(env, "dev", "args is a map without entries, as in flow run without --arg")
}
test "a day of sleep takes no time" {
  let before = time.now()
  sleep(24h)
  assert_eq(time.now() - before, 24h)
}
test "a wait with a timeout and no signal times out on the virtual clock" {
  try { approve(2h) } catch e { assert_eq(e.kind, "timeout") }
}
"""

FAILING = """
print("top-level output")
test "passes" { assert(true) }
test "assert_eq names both values" { assert_eq({a: [1, 2]}, {a: [1, 3]}, "the lists differ") }
test "assert needs true, not merely truthy" { assert(1) }
test "a wait for a signal no one sends" { signal.wait("never") }
test "an uncaught error" {
  print("printed by the test")
  throw error("boom", "it broke")
}
"""


@case
def passing_tests():
    p = flow("test", program("ok_test.flow", PASSING))
    check("exit 0", p.returncode == 0, f"exit {p.returncode}: {p.stdout}{p.stderr}")
    lines = p.stdout.splitlines()
    names = [re.sub(r" \(\d+\.\d ms\)$", "", line) for line in lines[1:-1]]
    check("each test's name and result, in order", names == [
        "  ok   a sent signal is taken by the wait",
        "  ok   each test starts from the file's top-level code again",
        "  ok   a day of sleep takes no time",
        "  ok   a wait with a timeout and no signal times out on the virtual clock"], p.stdout)
    check("then the count", lines[-1] == "4 passed, 0 failed", p.stdout)


@case
def failing_tests():
    p = flow("test", program("bad_test.flow", FAILING))
    check("exit 1", p.returncode == 1, f"exit {p.returncode}: {p.stderr}")
    out = p.stdout
    check("the count", out.splitlines()[-1] == "1 passed, 4 failed", out)
    check("assert_eq shows both values and the message",
          'FAIL assert_eq names both values' in out and
          'error: assert: got {"a":[1,2]}, want {"a":[1,3]}: the lists differ' in out, out)
    check("assert(1) fails", "assert takes a bool, got 1" in out, out)
    check("a wait no one answers is a failure, not a hang", "it waits for a signal no one sent" in out, out)
    check("an uncaught error: its kind, message and the test in its trace",
          "error: boom: it broke" in out and 'at test "an uncaught error" (' in out, out)
    check("a failed test's output is shown", "printed by the test" in out and "top-level output" in out, out)


MOCKS = """fn notify(url) {
  let r = http.post(url, {json: {text: "hi"}})
  return r.status
}
fn ping(url) { return http.get(url).status }
test "http.post is faked" {
  let sent = []
  mock("http.post", fn(url, opts) {
    sent.push([url, opts.json.text])
    return {status: 201, body: ""}
  })
  assert_eq(notify("http://example.invalid/hook"), 201)
  assert_eq(sent, [["http://example.invalid/hook", "hi"]])
}
test "padded and as a value" {
  mock("http.get", fn(url, opts) { return {status: opts ?? 7} })
  assert_eq(ping("x"), 7)
  let g = http.get
  assert_eq(g("y").status, 7)
}
test "time.now mocked" {
  mock("time.now", fn() { return 42 })
  assert_eq(time.now(), 42)
}
test "not an effect" {
  try { mock("len", fn(x) { return 1 }) } catch e { assert_eq(e.kind, "type") }
}
"""


@case
def mocks_fake_effects():
    p = flow("test", program("mock_test.flow", MOCKS))
    check("every mock case passes", p.returncode == 0 and p.stdout.splitlines()[-1] == "4 passed, 0 failed",
          f"exit {p.returncode}: {p.stdout}{p.stderr}")
    q = flow("run", "--ephemeral", program("m.flow", 'mock("time.now", fn() { return 1 })\n'))
    check("mock outside a test raises `type`", q.returncode == 1 and "mock() works in tests only" in q.stderr, q.stderr)


@case
def files_that_do_not_compile_or_hold_no_test():
    broken = flow("test", program("broken_test.flow", 'test "x" { assert_eq(1) }\ntest "x" { }\n'))
    check("exit 2 with the compiler's errors", broken.returncode == 2 and
          "`assert_eq` takes 2 to 3 arguments, got 1" in broken.stderr and
          'a second test named "x"' in broken.stderr, broken.stderr)
    empty = flow("test", program("empty_test.flow", "print(1)\n"))
    check("a file without tests says so", empty.returncode == 0 and "no tests" in empty.stdout and
          "0 passed, 0 failed" in empty.stdout, empty.stdout)
    nested = flow("check", program("nested.flow", 'if true {\n  test "inner" { }\n}\n'))
    check("a test block inside a block is refused", nested.returncode == 2 and
          "`test` blocks only at the top level" in nested.stderr, nested.stderr)


@case
def tests_do_not_run_in_a_run():
    path = program("mixed.flow", 'print("program")\ntest "t" { print("test ran") }\n')
    p = flow("run", "--ephemeral", path)
    check("flow run runs the program, not its tests", p.returncode == 0 and p.stdout == "program\n", p.stdout)
    q = flow("run", "--ephemeral", program("send.flow", 'try { signal.send("x", 1) } catch e { print(e.kind) }\n'))
    check("signal.send outside a test raises `signal`", q.stdout == "signal\n", q.stdout + q.stderr)


@case
def an_endless_loop_fails_its_test_instead_of_hanging():
    path = program("loop_test.flow", """
test "loops forever" {
  let i = 0
  while true { i += 1 }
}
test "the next test still runs" {
  assert_eq(1 + 1, 2)
}
""")
    p = flow("test", "--max-instructions", "2000000", path, timeout=60)
    check("exit 1: one failed", p.returncode == 1, p.stdout + p.stderr)
    check("the loop fails with kind budget, naming the limit",
          re.search(r"FAIL loops forever .*\n.*budget", p.stdout) is not None and "2000000" in p.stdout.replace(",", ""),
          p.stdout)
    check("the next test passes", "ok   the next test still runs" in p.stdout and "1 passed, 1 failed" in p.stdout, p.stdout)
    p = flow("test", "--max-instructions", "0", path)
    check("a bound of 0 is refused", p.returncode == 2, p.stdout + p.stderr)


if __name__ == "__main__":
    main()
