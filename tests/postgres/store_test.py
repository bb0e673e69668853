#!/usr/bin/env python3
"""The PostgreSQL store through the command line: `flow store init` (the schema made once,
by any number at once; a database of a newer flow refused), FLOW_STORE naming a database,
bad addresses as clear errors, and `flow migrate` moving suspended and crashed runs from a
folder to the database and back, each resuming where it stood."""
import json, os, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, check, flow, main, own_pg_server, pg_server, program, runs, server, status, tmp  # noqa: E402

WAITS = 'print("before")\nlet v = signal.wait("go")\nprint("got", v)\n'
COUNTS = 'for i in range(6) {\n  print("step", i)\n  sleep(5ms)\n}\nprint("end")\n'


@case
def init_once_and_newer_refused():
    db = pg_server().database("init")
    inits = [subprocess.Popen([FLOW, "store", "init", "--store", db], stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate()[1] for p in inits]
    check("six inits at once all succeed (the schema is made once)", all(p.returncode == 0 for p in inits), errors)
    r = flow("runs", "--json", "--store", db)
    check("the new store lists no runs", r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr)
    r = flow("run", program("w.flow", WAITS), "--store", db, "--run-id", "w", "--detach")
    check("a run starts in it", r.returncode == 75, r.stderr)
    pg_server().sql("UPDATE flow_schema SET version = 99", db)
    for args in (["runs", "--store", db], ["resume", "w", "--store", db], ["store", "init", "--store", db]):
        r = flow(*args)
        check(f"flow {args[0]} refuses a store of a newer flow, saying so",
              r.returncode != 0 and "newer flow" in r.stderr and "upgrade flow" in r.stderr, r.stderr)


@case
def addresses():
    db = pg_server().database("env")
    r = flow("run", program("c.flow", COUNTS), "--run-id", "e", env=dict(os.environ, FLOW_STORE=db), cwd=tmp())
    check("FLOW_STORE names a database", r.returncode == 0 and "e" in runs(db), r.stderr)
    check("nothing is made in the working folder", not os.path.exists(tmp(".flow")) and
          not os.path.exists(tmp("postgresql:")), os.listdir(tmp()))
    r = flow("runs", "--store", f"postgresql://flow@127.0.0.1:{pg_server().port}/nosuchdb")
    check("a database that does not exist is a clear error", r.returncode != 0 and "nosuchdb" in r.stderr and
          "does not exist" in r.stderr, r.stderr)
    r = flow("runs", "--store", "postgresql://flow:secret@127.0.0.1:1/x")
    check("a server that cannot be reached is a clear error, its password not shown",
          r.returncode != 0 and "cannot connect" in r.stderr and "secret" not in r.stderr, r.stderr)
    r = flow("run", program("n.flow", 'print("x")\n'), "--store",
             f"postgresql://flow:s3cret@127.0.0.1:{pg_server().port}/nodb?password=hunter2")
    check("no password of the address is shown when a run cannot start",
          r.returncode != 0 and "nodb" in r.stderr and "s3cret" not in r.stderr and "hunter2" not in r.stderr, r.stderr)
    db2 = pg_server().database("bare")
    r = flow("runs", "--store", db2)
    check("a database without a store lists nothing", r.returncode == 0, r.stderr)
    r = flow("resume", "x", "--store", db2)
    check("resume in a database without a store says to make one", r.returncode != 0 and "flow store init" in r.stderr,
          r.stderr)


@case
def a_worker_outlives_a_server_restart():
    """A worker whose connections the server cut (a restart, a failover) connects again:
    a run submitted after it is executed."""
    db = own_pg_server().database("restart")  # not a shared server: it is restarted
    flow("store", "init", "--store", db)
    w = subprocess.Popen([FLOW, "worker", "--store", db], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    own_pg_server().restart()
    r = flow("submit", program("c.flow", COUNTS), "--store", db, "--run-id", "after")
    check("a run is submitted after the restart", r.returncode == 0, r.stderr)
    deadline = time.time() + 90
    while time.time() < deadline and runs(db).get("after", {}).get("status") != "completed":
        time.sleep(0.3)
    w.terminate()
    _, err = w.communicate(timeout=60)
    check("the worker executes it on new connections", runs(db).get("after", {}).get("status") == "completed",
          err[-2000:])


@case
def migrate_there_and_back():
    folder, db, back = tmp("folder"), pg_server().database("migrate"), tmp("back")
    r = flow("run", program("w.flow", WAITS), "--store", folder, "--run-id", "waiting", "--detach")
    check("a run waits for a signal in the folder store", r.returncode == 75, r.stderr)
    r = flow("run", program("w.flow", WAITS), "--store", folder, "--run-id", "signalled", "--detach")
    r = flow("signal", "signalled", "go", '"early"', "--store", folder)
    check("a signal waits in its mailbox", r.returncode == 0, r.stderr)
    crashed = flow("run", program("c.flow", COUNTS), "--store", folder, "--run-id", "crashed", crash="3:after-checkpoint")
    check("a run crashed in the folder store", crashed.returncode == -9, crashed.stderr)
    r = flow("run", program("d.flow", 'print("done")\n'), "--store", folder, "--run-id", "done")
    flow("queue", "set", "q", "--concurrency", "2", "--store", folder)
    r = flow("schedule", "add", "nightly", program("n.flow", 'print("night")\n'), "--cron", "0 3 * * *", "--queue", "q",
             "--store", folder)
    check("a schedule and a queue cap in the folder store", r.returncode == 0, r.stderr)
    r = flow("migrate", "--from", folder, "--to", db)
    check("migrate moves every run to the database", r.returncode == 0 and sorted(r.stdout.split()) ==
          ["crashed", "done", "signalled", "waiting"], r.stdout + r.stderr)
    listed = lambda what, st: json.loads(flow(what, "list", "--json", "--store", st).stdout or "[]")  # noqa: E731
    check("and the schedule, which only the database has now (one store fires it)",
          [x["name"] for x in listed("schedule", db)] == ["nightly"] and listed("schedule", folder) == [] and
          "schedule nightly moved" in r.stderr, (listed("schedule", db), listed("schedule", folder), r.stderr))
    check("and the queue's cap, copied", [(x["name"], x["concurrency"]) for x in listed("queue", db)] == [("q", 2)],
          listed("queue", db))
    check("the runs are in the database, none left in the folder",
          set(runs(db)) == {"crashed", "done", "signalled", "waiting"} and runs(folder) == {}, (runs(db), runs(folder)))
    r = flow("schedule", "tick", "--now", "2030-01-01T03:00Z", "--store", db)
    fired = [i for i in runs(db) if i.startswith("nightly-")]
    check("the moved schedule fires in the database, its code moved with it",
          r.returncode == 0 and len(fired) == 1 and flow("resume", fired[0], "--store", db).stdout == "night\n",
          (r.returncode, r.stdout, r.stderr, fired))
    r = flow("resume", "signalled", "--store", db)
    check("a signal sent before the move is received after it", r.returncode == 0 and r.stdout == "got early\n",
          r.stdout + r.stderr)
    r = flow("resume", "crashed", "--store", db)
    check("the crashed run resumes in the database where it stood",
          r.returncode == 0 and crashed.stdout + r.stdout == "".join(f"step {i}\n" for i in range(6)) + "end\n",
          crashed.stdout + "|" + r.stdout + r.stderr)
    r = flow("migrate", "--from", db, "--to", back, "waiting")
    check("migrate moves a chosen run back to a folder", r.returncode == 0 and r.stdout.split() == ["waiting"],
          r.stdout + r.stderr)
    r = flow("signal", "waiting", "go", '"yes"', "--store", back)
    r = flow("resume", "waiting", "--store", back)
    check("the waiting run, moved twice, gets its signal and ends", r.returncode == 0 and r.stdout == "got yes\n",
          r.stdout + r.stderr)
    r = flow("migrate", "--from", folder, "--to", folder)
    check("a migrate to the same store is refused", r.returncode == 2, r.stderr)
    # A migrate to B cut short after its copy, then one to C: refused, the run stays.
    r = flow("run", program("w.flow", WAITS), "--store", back, "--run-id", "half", "--detach")
    with open(os.path.join(back, "runs", "half", "poisoned"), "w") as f:
        f.write("being moved by flow migrate to " + tmp("b"))
    r = flow("migrate", "--from", back, "--to", tmp("c"), "half")
    check("a run being moved to one store is not moved to another", r.returncode != 0 and "set aside" in r.stderr and
          "half" in runs(back) and "half" not in runs(tmp("c")), r.stdout + r.stderr)


DEFERRED = 76  # flow resume of a run whose queue is full (cli/exit_codes.h)


@case
def queue_slot_of_a_killed_process():
    """A queue's slot is a lease: one held by a process killed on another machine is waited
    out (the lease), one held by a process that died on this machine is free at once."""
    db = pg_server().database("slots")
    env = dict(os.environ, FLOW_LEASE_MS="2000")
    on = lambda machine: dict(env, FLOW_MACHINE_ID=machine)  # noqa: E731
    flow("queue", "set", "q", "--concurrency", "1", "--store", db)
    hold = program("hold.flow", f'print("before")\nhttp.get("{server("inflight_server.py")}/hold/h?until=99&ms=30000")\n')
    for rid in ("holder", "holder2"):
        flow("submit", hold, "--queue", "q", "--run-id", rid, "--store", db)
    for rid in ("second", "third"):
        flow("submit", program("d.flow", 'print("done")\n'), "--queue", "q", "--run-id", rid, "--store", db)

    def killed_holding(rid):
        """Resumes RID on machine a until it waits for its answer (30 s), its slot held; kills it -9."""
        holder = subprocess.Popen([FLOW, "resume", rid, "--store", db], env=on("a"), stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        holder.stdout.readline()  # "before"
        time.sleep(0.2)  # its request sent
        listed = flow("queue", "list", "--json", "--store", db)
        check(f"the live {rid} takes the queue's one slot", '"executing": 1' in listed.stdout, listed.stdout + listed.stderr)
        holder.kill()
        holder.wait()

    killed_holding("holder")
    r = flow("resume", "second", "--store", db, env=on("b"))
    check("on another machine the killed holder's slot is held until its lease runs out (deferred, exit 76)",
          r.returncode == DEFERRED and status(db, "second") == "queued", (r.returncode, r.stderr))
    time.sleep(2.2)
    r = flow("resume", "second", "--store", db, env=on("b"))
    check("after the lease, another machine takes the slot", r.returncode == 0 and r.stdout == "done\n",
          (r.returncode, r.stdout, r.stderr))
    killed_holding("holder2")
    r = flow("resume", "third", "--store", db, env=on("a"))
    check("on its own machine a dead holder's slot is free at once", r.returncode == 0 and r.stdout == "done\n",
          (r.returncode, r.stdout, r.stderr))


@case
def a_slot_given_back_elsewhere_starts_a_waiting_run():
    """A worker whose queued run found its queue full is told when another machine's
    process gives the slot back (NOTIFY), and starts the run then, not at its next rescan
    (a minute)."""
    db = pg_server().database("room")
    flow("queue", "set", "q", "--concurrency", "1", "--store", db)
    hold = program("hold.flow", f'http.get("{server("inflight_server.py")}/hold/h?until=99&ms=2000")\nprint("held")\n')
    flow("submit", hold, "--queue", "q", "--run-id", "holder", "--store", db)
    holder = subprocess.Popen([FLOW, "resume", "holder", "--store", db], env=dict(os.environ, FLOW_MACHINE_ID="a"),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    worker = subprocess.Popen([FLOW, "worker", "--store", db], env=dict(os.environ, FLOW_MACHINE_ID="b"),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.7)  # the holder executes, the worker listens
        flow("submit", program("d.flow", 'print("done")\n'), "--queue", "q", "--run-id", "next", "--store", db)
        time.sleep(0.5)
        check("the queue is full: the next run waits", status(db, "next") == "queued", runs(db))
        holder.communicate(timeout=30)
        ended = time.time()
        while time.time() < ended + 10 and status(db, "next") != "completed":
            time.sleep(0.1)
        check("once the holder gives its slot back, the worker starts the waiting run within seconds",
              status(db, "next") == "completed", (round(time.time() - ended, 1), runs(db)))
    finally:
        for p in (holder, worker):
            p.kill()
            p.wait()


@case
def a_worker_hears_schedules_change():
    """A running worker learns of a schedule added, and of one deleted, at once (NOTIFY),
    not at its next rescan (a minute)."""
    db = pg_server().database("schedules")
    worker = subprocess.Popen([FLOW, "worker", "--store", db], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.5)  # listening
        r = flow("schedule", "add", "tick", program("h.flow", 'print("tick")\n'), "--every", "1s", "--store", db)
        check("a schedule is added to the database", r.returncode == 0, r.stderr)
        deadline = time.time() + 10
        while time.time() < deadline and not any(status(db, i) == "completed" for i in runs(db)):
            time.sleep(0.1)
        fired = [i for i in runs(db) if i.startswith("tick-")]
        check("the running worker fires it within seconds", fired and all(status(db, i) == "completed" for i in fired[:1]),
              runs(db))
        r = flow("schedule", "delete", "tick", "--store", db)
        time.sleep(0.3)
        before = len(runs(db))
        time.sleep(2.5)
        check("deleted, it fires no more", r.returncode == 0 and len(runs(db)) == before, (r.stderr, runs(db)))
    finally:
        worker.kill()
        worker.wait()


if __name__ == "__main__":
    main()
