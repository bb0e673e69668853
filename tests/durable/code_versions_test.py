#!/usr/bin/env python3
"""Code versions (issue 11, point 4): a run keeps the source of its code beside its
bytecode (code/HASH.flow); its stack traces and `flow inspect` quote that source, not the
file on disk, and `flow resume` (and the worker) say when the file on disk has changed
since the run started, or is gone."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import case, folder_store_case, check, flow, main, program, store, tmp  # noqa: E402

# Waits for a signal, then indexes a one-item list with it: `flow signal RUN go 5` fails
# the run on line 3, `print(xs[v])`.
WAITS_THEN_FAILS = '''let v = signal.wait("go")
let xs = [1]
print(xs[v])
'''
# The same program edited: two lines before it, and line 3 now says something else.
EDITED = '''// edited after the run started
print("the new code")
let v = signal.wait("go")
let xs = [1]
print(xs[v])
'''


def suspended(run_id, text=WAITS_THEN_FAILS, name="p.flow"):
    path = program(name, text)
    r = flow("run", path, "--store", store(), "--run-id", run_id)
    assert r.returncode == 75, r.stderr
    return path


@folder_store_case
def resumed_trace_quotes_the_stored_source():
    path = suspended("t1")
    code = [f for f in os.listdir(os.path.join(store(), "code")) if f.endswith(".flow")]
    check("the source is stored beside the bytecode, byte for byte",
          len(code) == 1 and open(os.path.join(store(), "code", code[0])).read() == WAITS_THEN_FAILS, code)
    program("p.flow", EDITED)
    flow("signal", "t1", "go", "5", "--store", store())
    r = flow("resume", "t1", "--store", store())
    check("the run failed on its stored code", r.returncode == 1 and "error: index" in r.stderr, r.stderr)
    check("the trace cites the line it executes, quoted from the stored source",
          f"at <script> ({path}:3)\n      3 | print(xs[v])\n" in r.stderr, r.stderr)
    check("not the file on disk (its line 3 is another)", "signal.wait" not in r.stderr.split("error:")[1], r.stderr)
    check("resume said the file changed, that the run keeps its code, and how to move to the new code",
          f"{path} has changed since the run started; the run continues on its stored code "
          f"(flow rerun t1 --code {path} moves to the new code)" in r.stderr, r.stderr)


@folder_store_case
def unchanged_file_gives_no_notice():
    suspended("t2")
    flow("signal", "t2", "go", "0", "--store", store())
    r = flow("resume", "t2", "--store", store())
    check("no notice when the file is as the run started (its source is stored to compare with)", r.returncode == 0
          and any(f.endswith(".flow") for f in os.listdir(os.path.join(store(), "code"))) and "changed" not in r.stderr
          and "no longer on disk" not in r.stderr, r.stderr)


@case
def gone_file_is_said_differently():
    path = suspended("t3")
    os.remove(path)
    flow("signal", "t3", "go", "5", "--store", store())
    r = flow("resume", "t3", "--store", store())
    check("a file that is gone: `no longer on disk`",
          f"{path} is no longer on disk; the run continues on its stored code" in r.stderr and "has changed" not in r.stderr,
          r.stderr)
    check("its trace still quotes the stored source", "      3 | print(xs[v])" in r.stderr, r.stderr)


@case
def worker_says_so_too():
    path = suspended("t4")
    program("p.flow", EDITED)
    flow("signal", "t4", "go", "0", "--store", store())
    r = flow("worker", "--once", "--store", store())
    check("flow worker's resume gives the notice", f"run t4: {path} has changed since the run started" in r.stderr,
          r.stderr)


@case
def inspect_quotes_the_stored_source():
    suspended("t5")
    program("p.flow", EDITED)
    r = flow("inspect", "t5", "--store", store())
    check("flow inspect quotes the line the run waits on from its stored source",
          '      1 | let v = signal.wait("go")' in r.stdout and "edited after" not in r.stdout, r.stdout)


@folder_store_case
def bytecode_run_says_it_has_no_source():
    src = program("b.flow", 'let xs = [1]\nprint(xs[3])\n')
    flow("compile", src, "-o", tmp("b.flowc"))
    r = flow("run", tmp("b.flowc"), "--store", store(), "--run-id", "b1")
    check("a run from a .flowc file says, where a line would be quoted, that it has no source",
          r.returncode == 1 and "(no source is stored with this run's code: it was started from a .flowc file" in r.stderr,
          r.stderr)
    check("and stores none", not any(f.endswith(".flow") for f in os.listdir(os.path.join(store(), "code"))),
          os.listdir(os.path.join(store(), "code")))


@case
def bytecode_file_changed_is_noticed():
    src = program("c.flow", WAITS_THEN_FAILS)
    flowc = tmp("c.flowc")
    flow("compile", src, "-o", flowc)
    flow("run", flowc, "--store", store(), "--run-id", "c1")
    flow("signal", "c1", "go", "0", "--store", store())
    same = flow("resume", "c1", "--store", store())
    check("the same .flowc: no notice", "changed" not in same.stderr, same.stderr)
    program("d.flow", EDITED)
    flow("run", flowc, "--store", store(), "--run-id", "c2")
    flow("compile", tmp("d.flow"), "-o", flowc)
    flow("signal", "c2", "go", "0", "--store", store())
    moved = flow("resume", "c2", "--store", store())
    check("a recompiled .flowc: the notice", f"{flowc} has changed since the run started" in moved.stderr, moved.stderr)


@case
def export_import_carries_the_source():
    path = suspended("t6")
    image = tmp("t6.fvm")
    e = flow("export", "t6", "-o", image, "--store", store())
    check("exported", e.returncode == 0, e.stderr)
    other = tmp("other")
    i = flow("import", image, "--store", other)
    check("imported", i.returncode == 0, i.stderr)
    os.remove(path)
    flow("signal", "t6", "go", "5", "--store", other)
    r = flow("resume", "t6", "--store", other)
    check("the imported run's trace quotes the source the image carried", "      3 | print(xs[v])" in r.stderr, r.stderr)


if __name__ == "__main__":
    main()
