#!/usr/bin/env python3
"""Runs one golden .flow program with `flow run` and compares what it prints.

Usage: run_golden.py FLOW_BINARY FILE.flow [EXPECTED_STDOUT_FILE [FLAGS...]]

Directives, as comments in the program (the same as ../shared/conformance uses):
  // expect: TEXT          the next line printed on stdout (exact, in order)
  // expect-exit: N        the exit code (default 0)
  // expect-stderr: TEXT   TEXT appears somewhere in stderr
  // flags: ARGS           extra arguments for `flow run`
The program runs in a fresh temporary store and working directory, 60 s at most.
"""
import os, re, shlex, subprocess, sys, tempfile


def main():
    flow, path = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    text = open(path, encoding="utf-8").read()
    expect, stderr_parts, flags, exit_code = [], [], [], 0
    for m in re.finditer(r"//\s*(expect|expect-exit|expect-stderr|flags):(.*)$", text, re.M):
        key, val = m.group(1), m.group(2)
        val = val[1:] if val.startswith(" ") else val
        if key == "expect":
            expect.append(val.rstrip())
        elif key == "expect-exit":
            exit_code = int(val.strip())
        elif key == "expect-stderr":
            stderr_parts.append(val.strip())
        else:
            flags += shlex.split(val)
    if len(sys.argv) > 3:  # expected output kept beside the program, as for examples/
        expect = open(sys.argv[3], encoding="utf-8").read().splitlines()
        flags += sys.argv[4:]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [flow, "run", path, "--store", os.path.join(tmp, "store")] + flags
        env = dict(os.environ, FLOW_CACHE_DIR=os.path.join(tmp, "cache"))  # the test's, not the user's
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp, env=env)
    problems = []
    got = p.stdout.splitlines()
    for i in range(max(len(got), len(expect))):
        g = got[i] if i < len(got) else "<nothing>"
        e = expect[i] if i < len(expect) else "<nothing>"
        if g != e:
            problems.append(f"stdout line {i + 1}: expected {e!r}, got {g!r}")
            break
    if p.returncode != exit_code:
        problems.append(f"exit code {p.returncode}, expected {exit_code}")
    for s in stderr_parts:
        if s not in p.stderr:
            problems.append(f"stderr lacks {s!r}")
    if problems:
        print(f"FAIL {os.path.basename(path)}")
        for pr in problems:
            print("  " + pr)
        print("  stderr was:\n" + p.stderr)
        return 1
    print(f"ok {os.path.basename(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
