#!/usr/bin/env python3
"""The shared conformance programs (../shared/conformance), each run by its own runner with
the store a PostgreSQL database instead of a temporary folder: the runner calls a wrapper
that hands `flow run` the case's database for the `--store` it gives."""
import os, stat, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, ROOT, add_case, check, main, pg_server, tmp  # noqa: E402

CONFORMANCE = os.environ.get("FLOW_CONFORMANCE_DIR", os.path.join(ROOT, "..", "shared", "conformance"))
PROGRAMS = sorted(f[:-5] for f in os.listdir(CONFORMANCE) if f.endswith(".flow")) if os.path.isdir(CONFORMANCE) else []

WRAPPER = """#!/bin/bash
# flow with every `--store DIR` replaced by the case's PostgreSQL database
args=(); swap=0
for a in "$@"; do
  if [ $swap = 1 ]; then args+=("$FLOW_TEST_PG_STORE"); swap=0; continue; fi
  [ "$a" = --store ] && swap=1
  args+=("$a")
done
exec "$FLOW_TEST_BINARY" "${args[@]}"
"""


def conformance(name):
    database = pg_server().database("conformance_" + name)
    wrapper = tmp("flow")
    with open(wrapper, "w") as f:
        f.write(WRAPPER)
    os.chmod(wrapper, stat.S_IRWXU)
    env = dict(os.environ, FLOW_TEST_PG_STORE=database, FLOW_TEST_BINARY=FLOW)
    r = subprocess.run([sys.executable, os.path.join(CONFORMANCE, "run.py"), wrapper,
                        os.path.join(CONFORMANCE, name + ".flow")], capture_output=True, text=True, env=env, timeout=60)
    check(f"{name} conforms on a PostgreSQL store", r.returncode == 0 and "1 passed, 0 failed" in r.stdout,
          r.stdout + r.stderr)
    with open(os.path.join(CONFORMANCE, name + ".flow")) as f:
        prints = "// expect:" in f.read()  # a program that compiles and prints (not a compile error)
    runs = subprocess.run([FLOW, "runs", "--json", "--store", database], capture_output=True, text=True)
    check(f"{name}: the runs are listed from the database", runs.returncode == 0, runs.stderr)
    if prints:
        check(f"{name}: its run is in the database", '"id"' in runs.stdout, runs.stdout)


for program in PROGRAMS:
    add_case(program, conformance, program)

if __name__ == "__main__":
    main()
