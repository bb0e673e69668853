#!/usr/bin/env python3
"""Packed runs (docs/checkpoint.md, "Packed runs"): an idle run is one file and 8 KB on
disk; every command reads or continues it as it did a run in files; a run due again soon
stays in files."""
import fcntl, json, os, sqlite3, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import case, check, flow, main, program, status, tmp  # noqa: E402


def folder(store, run_id):
    return os.path.join(store, "runs", run_id)


def names(store, run_id):
    return sorted(os.listdir(folder(store, run_id)))


def du_kb(path):
    return int(subprocess.run(["du", "-sk", path], capture_output=True, text=True).stdout.split()[0])


def approval():
    return program("approval.flow", '''
let n = 0
for i in range(3) { n = n + 1 }
print("asking", n)
let answer = signal.wait("approve")
print("answer", answer)
''')


@case
def suspended_run_is_one_file_of_8_kb():
    s = tmp("s1")
    for i in range(5):
        r = flow("run", approval(), "--store", s, "--run-id", f"a{i}")
        check(f"run a{i} suspends waiting for its signal", r.returncode == 75, r.stderr)
    check("its folder holds its lock and its packed file only", names(s, "a0") == ["lock", "packed"], names(s, "a0"))
    sizes = [du_kb(folder(s, f"a{i}")) for i in range(5)]
    check("each takes 8 KB on disk (du: the folder and one block)", all(k <= 8 for k in sizes), f"{sizes}")
    r = flow("runs", "--store", s, "--status", "suspended")
    check("flow runs lists the packed runs as suspended", r.returncode == 0 and
          [line.split()[1] for line in r.stdout.splitlines()[1:]] == ["suspended"] * 5,
          r.stdout + r.stderr)


@case
def every_command_reads_and_continues_a_packed_run():
    s = tmp("s2")
    flow("run", approval(), "--store", s, "--run-id", "p")
    r = flow("inspect", "p", "--store", s)
    check("inspect shows its state", r.returncode == 0 and "status suspended" in r.stdout and "n = 3" in r.stdout,
          r.stdout + r.stderr)
    before = {n: open(os.path.join(folder(s, "p"), n), "rb").read() for n in names(s, "p")}
    r = flow("history", "p", "--store", s)
    check("history lists its effects", r.returncode == 0 and "signal.wait" in r.stdout, r.stdout + r.stderr)
    image = tmp("p.fvm")
    r = flow("export", "p", "-o", image, "--store", s)
    check("export writes its image", r.returncode == 0 and os.path.getsize(image) > 0, r.stderr)
    after = {n: open(os.path.join(folder(s, "p"), n), "rb").read() for n in names(s, "p")}
    check("reading it leaves its files byte for byte", before == after, f"{sorted(before)} {sorted(after)}")
    r = flow("fork", "p", "--store", s, "--run-id", "forked")
    check("fork copies it", r.returncode in (0, 75) and status(s, "forked") == "suspended", r.stdout + r.stderr)
    other = tmp("other")
    r = flow("import", image, "--store", other)
    check("its image imports elsewhere", r.returncode == 0, r.stderr)
    flow("signal", "p", "approve", '"yes"', "--store", s)
    r = flow("resume", "p", "--store", s)
    check("resumed, it continues where it waited", r.returncode == 0 and r.stdout == "answer yes\n",
          r.stdout + r.stderr)
    check("completed, it is packed again", names(s, "p") == ["lock", "packed"] and status(s, "p") == "completed",
          f"{names(s, 'p')} {status(s, 'p')}")
    r = flow("history", "p", "--store", s)
    check("its whole history reads from the packed file", r.returncode == 0 and "print" in r.stdout and
          "done" in r.stdout, r.stdout + r.stderr)
    r = flow("cancel", "forked", "--store", s)
    check("cancel continues a packed run to its end", r.returncode in (0, 1) and status(s, "forked") == "cancelled",
          f"{r.returncode} {r.stderr}")
    r = flow("resume", "p", "--store", other)
    check("the imported copy resumes, once signalled", r.returncode == 75 and "asking" not in r.stdout,
          r.stdout + r.stderr)


@case
def a_run_due_soon_stays_in_files():
    s = tmp("s3")
    nap = program("nap.flow", 'print("a")\nsleep(20s)\nprint("b")\n')
    r = flow("run", nap, "--store", s, "--run-id", "n", "--detach")
    check("a run with a timer due within a minute suspends", r.returncode == 75, r.stderr)
    check("and stays in files: it is about to be resumed", "packed" not in names(s, "n") and "run" in names(s, "n"),
          names(s, "n"))


@case
def a_damaged_packed_file_is_reported_not_guessed():
    s = tmp("s4")
    flow("run", approval(), "--store", s, "--run-id", "d")
    flow("run", approval(), "--store", s, "--run-id", "good")
    path = os.path.join(folder(s, "d"), "packed")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x10
    open(path, "wb").write(bytes(data))
    for command in (["resume", "d"], ["inspect", "d"], ["history", "d"]):
        r = flow(*command, "--store", s)
        check(f"{command[0]} of a damaged packed run is exit 3 naming it", r.returncode == 3 and "run d" in r.stderr,
              f"{r.returncode} {r.stderr}")
    check("the packed file is left as it was", open(path, "rb").read() == bytes(data), "changed")
    r = flow("runs", "--store", s)
    check("flow runs reads both from the index of packed runs, which opens no run's file",
          r.returncode == 0 and "d " in r.stdout and "good" in r.stdout, r.stdout + r.stderr)
    remove_index(s)
    r = flow("runs", "--store", s)
    check("without the index, flow runs reads each run: names it and lists the other",
          r.returncode == 3 and "run d" in r.stderr and "good" in r.stdout, r.stdout + r.stderr)


def remove_index(store):
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        if os.path.exists(os.path.join(store, name)):
            os.remove(os.path.join(store, name))


def index_rows(store):
    # Read only: a read-write connection would copy the log in as it closes.
    db = sqlite3.connect("file:" + os.path.join(store, "index.sqlite") + "?mode=ro", uri=True)
    try:
        return {row[0]: row[1] for row in db.execute("SELECT id, disk_bytes FROM packed_runs")}
    finally:
        db.close()


@case
def flow_runs_reads_packed_runs_from_the_index():
    """A packed run has a row in index.sqlite (docs/checkpoint.md, "The index of packed
    runs"), removed before the run changes; flow runs reads packed runs from it and what is
    not there from the folders, and gives a row to a packed run that lacks one."""
    s = tmp("s6")
    for run_id in ("a", "b"):
        flow("run", approval(), "--store", s, "--run-id", run_id)
    check("each packed run has its row", sorted(index_rows(s)) == ["a", "b"], f"{index_rows(s)}")
    r = flow("fork", "a", "--store", s, "--run-id", "f")
    check("the fork is packed too, with its origin", r.returncode in (0, 75) and "f" in index_rows(s),
          f"{index_rows(s)} {r.stderr}")
    flow("signal", "a", "approve", '"yes"', "--store", s)
    r = flow("resume", "a", "--store", s)
    check("resumed, it completes", r.returncode == 0 and status(s, "a") == "completed", r.stdout + r.stderr)
    r = flow("runs", "--store", s, "--json")
    runs = {x["id"]: x for x in json.loads(r.stdout)} if r.returncode == 0 else {}
    check("flow runs --json shows what the rows hold: the new status, sizes, the fork's origin",
          runs.get("a", {}).get("status") == "completed" and runs.get("b", {}).get("status") == "suspended" and
          runs.get("f", {}).get("origin", {}).get("run") == "a" and
          all(runs[k]["size_bytes"] == index_rows(s)[k] > 0 for k in runs), r.stdout + r.stderr)
    # A store from before the index: the listing reads the folders, then gives them rows.
    remove_index(s)
    r = flow("runs", "--store", s, "--status", "suspended")
    check("without rows, the packed runs are read from their folders",
          r.returncode == 0 and [line.split()[0] for line in r.stdout.splitlines()[1:]] == ["b", "f"],
          r.stdout + r.stderr)
    check("and get their rows back", sorted(index_rows(s)) == ["a", "b", "f"], f"{index_rows(s)}")
    # A damaged index: a warning, the runs read from their folders, and it is replaced.
    for name in ("index.sqlite", "index.sqlite-wal"):  # the database and its log
        with open(os.path.join(s, name), "wb") as f:
            f.write(b"not a database" * 1000)
    r = flow("runs", "--store", s, "--status", "suspended")
    check("a damaged index is a warning, not a wrong listing",
          r.returncode == 0 and "warning" in r.stderr and "index" in r.stderr and
          [line.split()[0] for line in r.stdout.splitlines()[1:]] == ["b", "f"], r.stdout + r.stderr)
    flow("signal", "b", "approve", '"no"', "--store", s)
    r = flow("resume", "b", "--store", s)
    check("a run resumes past a damaged index", r.returncode == 0 and r.stdout == "answer no\n", r.stdout + r.stderr)
    check("which the next writer replaced", "b" in index_rows(s), f"{index_rows(s)}")


@case
def a_worker_adds_the_rows_of_the_runs_its_children_packed():
    """A worker's children leave the rows to the worker, which adds them together."""
    s = tmp("s7")
    for i in range(3):
        r = flow("submit", approval(), "--store", s, "--run-id", f"q{i}")
        check(f"q{i} is queued", r.returncode == 0, r.stderr)
    w = flow("worker", "--once", "--concurrency", "2", "--store", s)
    check("the worker starts them; each suspends, packed", w.returncode == 0 and
          all(names(s, f"q{i}") == ["lock", "packed"] for i in range(3)), f"{w.returncode} {w.stderr[-300:]}")
    check("and each has its row", sorted(index_rows(s)) == ["q0", "q1", "q2"], f"{index_rows(s)}")


@case
def a_run_held_by_another_process_is_skipped_not_crashed():
    """A worker's child that finds the run taken (here: its lock held by this test) is
    reported skipped, never counted as a crash; once the holder lets go, the run goes on."""
    s = tmp("s5")
    flow("run", approval(), "--store", s, "--run-id", "h")
    flow("signal", "h", "approve", '"ok"', "--store", s)
    with open(os.path.join(folder(s, "h"), "lock"), "r+") as held:
        fcntl.lockf(held, fcntl.LOCK_EX)
        w = flow("worker", "--once", "--json", "--store", s)
        events = [json.loads(line) for line in w.stdout.splitlines() if line.startswith("{")]
        kinds = [e["event"] for e in events if e.get("run") == "h"]
        check("the worker says it skipped the held run", "skipped" in kinds and "crashed" not in kinds,
              f"{kinds} {w.stderr[-500:]}")
        check("and counts no crash", w.returncode == 0 and not os.path.exists(os.path.join(folder(s, "h"), "crashes")),
              f"{w.returncode} {names(s, 'h')}")
    w = flow("worker", "--once", "--store", s)
    check("let go, the next pass completes it", status(s, "h") == "completed" and "answer ok" in w.stderr + w.stdout,
          f"{status(s, 'h')} {w.stderr[-500:]}")


if __name__ == "__main__":
    main()
