#!/usr/bin/env python3
"""Runaway guards through the flow command: a budget's grace is kept across resumes, a
process out of memory stops its run cleanly (resumable), and waits of INT64_MAX ms end
never instead of at once."""
import os, resource, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import case, check, flow, main, program, record, skip, store, tmp  # noqa: E402

INT64_MAX = 9223372036854775807


def limited(*args, limit_memory):
    """flow ARGS under an address-space limit."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))
    return flow(*args, timeout=120, preexec_fn=limit)


def lines(path):
    return open(path).read().count("\n") if os.path.exists(path) else 0


def grace_loop():
    out = tmp("grace.out")
    return out, program("grace.flow", f'''
while true {{
  try {{ while true {{ fs.append("{out}", "x\\n") }} }} catch e {{ print("caught", e.kind) }}
}}
''')


@case
def grace():
    """One grace per budget per run, kept in the checkpoint."""
    out, loop = grace_loop()
    r = flow("run", loop, "--store", store(), "--run-id", "g", "--max-effects", "3")
    # 3 appends, the caught budget (its print is an effect), 9 more appends in the grace.
    check("a catch-all loop stops after one grace", r.returncode == 1 and r.stdout == "caught budget\n" and
          lines(out) == 12 and "the run stops" in r.stderr, f"{r.returncode} {r.stdout!r} {lines(out)} {r.stderr}")
    r = flow("resume", "g", "--store", store())
    check("resumed with the same budget, it gets no new grace", r.returncode == 1 and r.stdout == "" and
          lines(out) == 12, f"{r.returncode} {r.stdout!r} {lines(out)} {r.stderr}")
    r = flow("resume", "g", "--store", store(), "--max-effects", "30")
    check("resumed with a larger budget, it goes on with a grace of its own",
          r.returncode == 1 and r.stdout == "caught budget\n" and lines(out) == 12 + 17 + 9,
          f"{r.returncode} {r.stdout!r} {lines(out)} {r.stderr}")


@case
def out_of_memory():
    """A clean stop at the last checkpoint, never an abort. The address space is limited
    below what the doubling string needs, and the budget set above it."""
    probe = limited("--version", limit_memory=1 << 30)
    if probe.returncode != 0:
        skip("this build cannot start under an address-space limit (a sanitizer)")
        return
    grow = program("grow.flow", 'print("start")\nlet s = "ab"\nwhile true { s = s + s }\n')
    r = limited("run", grow, "--store", store(), "--run-id", "oom", "--max-memory", "64G", limit_memory=1 << 30)
    check("running out of memory ends the run with a message, not an abort",
          r.returncode == 1 and r.stdout == "start\n" and "ran out of memory" in r.stderr,
          f"{r.returncode} {r.stderr}")
    rec = record(store(), "oom")
    check("the run is kept, stopped like a budget", rec.get("status") == "failed", rec)
    r = flow("resume", "oom", "--store", store(), "--max-memory", "16M", timeout=120)
    check("and resumes from its last checkpoint (with a memory budget that stops it as budget)",
          r.returncode == 1 and "memory budget of 16 MiB" in r.stderr and "resuming run oom" in r.stderr, r.stderr)
    r = limited("run", grow, "--ephemeral", "--max-memory", "64G", limit_memory=1 << 30)
    check("an ephemeral run out of memory ends cleanly too", r.returncode == 1 and "ran out of memory" in r.stderr,
          f"{r.returncode} {r.stderr}")


@case
def memory_unit():
    r = flow("run", grace_loop()[1], "--store", store(), "--max-memory", "512")
    check("--max-memory needs a unit", r.returncode == 2 and "512M" in r.stderr, r.stderr)


@case
def int64_max_waits():
    """Waits of INT64_MAX ms: the wake time saturates, so it is never due."""
    forever = program("forever.flow", f'print("sleeping")\nsleep({INT64_MAX})\nprint("woke")\n')
    r = flow("run", forever, "--store", store(), "--run-id", "forever")
    check("sleep(INT64_MAX) suspends the run", r.returncode == 75 and r.stdout == "sleeping\n", f"{r.returncode} {r.stderr}")
    w = flow("worker", "--once", "--store", store())
    check("the worker never finds it due", "resuming run forever" not in w.stderr and w.stdout == "" and
          record(store(), "forever").get("status") == "suspended", w.stdout + w.stderr)
    wait = program("wait.flow", f'try {{ signal.wait("x", {{timeout: {INT64_MAX}}}) }} catch e {{ print(e.kind) }}\n')
    r = flow("run", wait, "--store", store(), "--run-id", "wait")
    check("signal.wait with an INT64_MAX timeout suspends instead of timing out", r.returncode == 75 and r.stdout == "",
          f"{r.returncode} {r.stdout!r} {r.stderr}")


main()
