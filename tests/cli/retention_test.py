#!/usr/bin/env python3
"""Retention (issue 11, point 9): `flow runs` shows each run's size on disk, `flow delete`
removes a run that is not live, `flow gc` removes old runs that are not live and the code
no run uses."""
import json, os, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, folder_store_case, check, flow, main, program, runs, store  # noqa: E402


def completed(run_id, text='print("hi")\n', name="p.flow"):
    r = flow("run", program(name, text), "--store", store(), "--run-id", run_id)
    assert r.returncode == 0, r.stderr
    return r


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def code_files():
    return sorted(f for f in os.listdir(os.path.join(store(), "code")) if f != "lock")


@folder_store_case
def runs_shows_the_size_on_disk():
    completed("s1")
    listed = runs(store())["s1"]
    check("--json: size_bytes, the bytes of the run's folder",
          listed.get("size_bytes") == folder_bytes(os.path.join(store(), "runs", "s1")) and listed["size_bytes"] > 0, listed)
    table = flow("runs", "--store", store()).stdout.splitlines()
    check("the table has a SIZE column in human units", "SIZE" in table[0] and
          any(u in table[1].split()[3] for u in ("B", "K", "M")), table)


@folder_store_case
def delete_removes_a_run():
    completed("d1")
    completed("d2")
    r = flow("delete", "d1", "--store", store())
    check("flow delete says what it freed", r.returncode == 0 and "deleted run d1" in r.stderr and "freed" in r.stderr,
          r.stderr)
    check("the run is gone, its folder too, the other run kept",
          set(runs(store())) == {"d2"} and sorted(os.listdir(os.path.join(store(), "runs"))) == ["d2"],
          os.listdir(os.path.join(store(), "runs")))
    again = flow("delete", "d1", "--store", store())
    check("deleting it again: no such run (exit 2)", again.returncode == 2 and "no run d1" in again.stderr, again.stderr)


@case
def delete_refuses_a_live_run():
    path = program("slow.flow", 'print("started")\nsleep(3s)\nprint("done")\n')
    p = subprocess.Popen([FLOW, "run", path, "--store", store(), "--run-id", "live"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    p.stdout.readline()  # "started": the run is live
    r = flow("delete", "live", "--store", store())
    out, err = p.communicate(timeout=60)
    check("a live run is refused, naming the process", r.returncode == 2 and f"pid {p.pid}" in r.stderr and
          "live run is not deleted" in r.stderr, r.stderr)
    check("and it finishes untouched", p.returncode == 0 and out == "done\n" and runs(store())["live"]["status"] == "completed",
          out + err)


@folder_store_case
def gc_removes_old_ended_runs_and_unused_code():
    completed("g1", name="a.flow")
    completed("g2", text='print("other")\n', name="b.flow")
    waiting = program("w.flow", 'signal.wait("go")\n')
    flow("run", waiting, "--store", store(), "--run-id", "g3")
    before = code_files()
    young = flow("gc", "--older-than", "1d", "--store", store())
    check("nothing is older than a day: nothing removed", young.returncode == 0 and set(runs(store())) == {"g1", "g2", "g3"}
          and "removed 0 run(s) and 0 code version(s)" in young.stdout, young.stdout + young.stderr)
    dry = flow("gc", "--older-than", "1ms", "--dry-run", "--store", store())
    check("--dry-run says what would go, removes nothing",
          "would remove run g1" in dry.stdout and "would remove run g2" in dry.stdout and "g3" not in dry.stdout
          and "would remove 2 run(s) and 2 code version(s)" in dry.stdout and code_files() == before
          and set(runs(store())) == {"g1", "g2", "g3"}, dry.stdout)
    freed_expected = sum(folder_bytes(os.path.join(store(), "runs", r)) for r in ("g1", "g2"))
    real = flow("gc", "--older-than", "1ms", "--store", store())
    check("gc removes the ended runs, keeps the suspended one by default", set(runs(store())) == {"g3"}, real.stdout)
    check("and the code only they used; the suspended run's code stays",
          len(before) == 6 and len(code_files()) == 2 and code_files()[0][:32] == code_files()[1][:32]
          and code_files()[0][:32] in [f[:32] for f in before], (before, code_files()))
    check("it prints the bytes freed", "removed 2 run(s) and 2 code version(s)" in real.stdout and "freed" in real.stdout,
          real.stdout)
    resumed = flow("signal", "g3", "go", "--store", store()), flow("resume", "g3", "--store", store())
    check("the kept run still resumes on its code", resumed[1].returncode == 0, resumed[1].stderr)
    named = flow("gc", "--older-than", "1ms", "--status", "completed", "--store", store())
    check("--status names which runs go", set(runs(store())) == set(), named.stdout)


@case
def gc_takes_a_suspended_run_only_when_named():
    flow("run", program("w.flow", 'signal.wait("go")\n'), "--store", store(), "--run-id", "w1")
    flow("gc", "--older-than", "1ms", "--store", store())
    check("default: a suspended run stays", set(runs(store())) == {"w1"}, runs(store()))
    r = flow("gc", "--older-than", "1ms", "--status", "suspended", "--store", store())
    check("--status suspended removes it", set(runs(store())) == set() and "removed run w1" in r.stdout, r.stdout)


@case
def gc_bad_duration_is_a_usage_error():
    r = flow("gc", "--older-than", "7", "--store", store())
    check("a duration needs a unit (exit 2, naming the option)", r.returncode == 2 and "--older-than" in r.stderr, r.stderr)


if __name__ == "__main__":
    main()
