#!/usr/bin/env python3
"""Local files: exactly once across crashes (an append, write or remove in flight is put
back to its recorded pre-state, then done again), a cap on fs.read, NUL bytes in paths."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import add_case, case, check, crash_then_resume, flow, history, main, program, tmp  # noqa: E402


def appends_killed(point):
    log = tmp("appends.txt")
    appends = program("appends.flow", f'''
for i in range(10) {{
  step "line-${{i}}" {{ fs.append("{log}", "line ${{i}}\\n") }}
}}
print("done")
''')
    first, second = crash_then_resume(appends, f"append-{point}", f"5:{point}")
    lines = open(log).read().splitlines() if os.path.exists(log) else []
    check(f"an fs.append killed at {point} and resumed leaves each line once",
          first.returncode == -9 and second.returncode == 0 and lines == [f"line {i}" for i in range(10)],
          f"{first.returncode} {second.returncode} {lines} {second.stderr}")


add_case("append_after_intent", appends_killed, "after-intent")
add_case("append_after_checkpoint", appends_killed, "after-checkpoint")


@case
def append_created():
    """The append that created its file, killed after the append: the resumed run recreates it once."""
    fresh = tmp("fresh.txt")
    created = program("created.flow", f'fs.append("{fresh}", "only\\n")\nprint(fs.read("{fresh}"))\n')
    first, second = crash_then_resume(created, "append-created", "1:after-effect")
    check("an fs.append that created its file and was killed is done once on resume",
          second.returncode == 0 and open(fresh).read() == "only\n", f"{open(fresh).read()!r} {second.stderr}")


@case
def append_after_effect():
    appends_killed("after-effect")
    hist = history("append-after-effect")
    check("the history of a resumed append run is readable (intents with a pre-state are version 2)",
          len([h for h in hist if h["effect"] == "fs.append"]) == 10, hist)


@case
def remove_in_flight():
    """fs.remove in flight: it answers what it would have answered the first time."""
    victim = program("victim.txt", "x")
    removing = program("remove.flow", f'print(fs.remove("{victim}"))\n')
    first, second = crash_then_resume(removing, "remove", "1:after-effect")
    check("an fs.remove killed after removing answers true on resume, as it did the first time",
          second.stdout == "true\n" and not os.path.exists(victim), second.stdout + second.stderr)


@case
def write_through_link():
    """fs.write replaces the file atomically and keeps its mode; no temporary file is left."""
    target = program("target.txt", "old content")
    os.chmod(target, 0o640)
    link = tmp("link.txt")
    os.symlink(target, link)
    r = flow("run", program("write.flow", f'fs.write("{link}", "new")\nprint(fs.read("{target}"))\n'), "--ephemeral")
    check("fs.write through a symlink replaces its target, keeps the mode and leaves no temporary file",
          r.stdout == "new\n" and os.path.islink(link) and oct(os.stat(target).st_mode & 0o777) == "0o640" and
          not [n for n in os.listdir(tmp()) if "flow-tmp" in n], r.stdout + r.stderr + str(os.listdir(tmp())))


@case
def read_cap():
    """fs.read is capped: an endless file raises `fs` instead of exhausting memory."""
    r = flow("run", program("zero.flow", '''
try { print(len(fs.read("/dev/zero"))) } catch e { print(e.kind) }
try { print(len(fs.read("/dev/zero", {max_bytes: 1000}))) } catch e { print(e.kind, e.message) }
print(len(fs.read("/etc/hostname", {max_bytes: 100000})) > 0)
'''), "--ephemeral")
    check("fs.read of /dev/zero raises fs at its cap (default 64 MiB, option max_bytes)",
          r.stdout == "fs\nfs /dev/zero is larger than 1000 bytes (option max_bytes)\ntrue\n", r.stdout + r.stderr)


@case
def nul_in_paths():
    """NUL bytes in a path are refused, not cut: "important\\0.txt" is not "important"."""
    important = program("important", "keep")
    r = flow("run", program("nul.flow", f'''
for f in [fn() {{ fs.write("{important}\\u0000.txt", "clobbered") }}, fn() {{ fs.append("{important}\\u0000", "x") }},
          fn() {{ fs.remove("{important}\\u0000.txt") }}, fn() {{ fs.read("{important}\\u0000.txt") }},
          fn() {{ fs.exists("{important}\\u0000.txt") }}, fn() {{ fs.list("{tmp()}\\u0000") }}] {{
  try {{ f() print("no error") }} catch e {{ print(e.kind) }}
}}
'''), "--ephemeral")
    check("fs paths with a NUL byte raise fs and leave the file before the NUL alone",
          r.stdout == "fs\n" * 6 and open(important).read() == "keep", r.stdout + r.stderr)


main()
