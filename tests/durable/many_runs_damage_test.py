#!/usr/bin/env python3
"""A store of many runs (issue 12, point 6) with a handful damaged in different ways: the
damage stays with the damaged runs. Runs waiting for a signal, timers that are due and not
due, completed runs, queued runs; then bytes flipped in the middle of a run's largest file,
a file cut to half, a file replaced by garbage, a run folder emptied but for its lock, a
damaged mailbox in shared/, names that are not runs in runs/ and wake/. flow runs lists
every good run and names the damaged ones, flow worker --once executes every good due run
and skips the damaged ones, resume/inspect/history refuse a damaged run (exit 3) and serve
its neighbours, signals still arrive, and gc and listing leave the damaged files as they are.

The damage is blind to the store's file layout (docs/checkpoint.md): it picks the regular
files a run folder holds other than `lock`, whatever they are named."""
import json, os, random, re, shutil, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, check, flow, main, program, store  # noqa: E402

PROGRAMS = {
    "waits": 'let v = signal.wait("go")\nprint("got", args.n, v)\n',
    "short": 'sleep(50ms)\nprint("woke", args.n)\n',  # with --detach: suspended, due 50 ms later
    "long": 'sleep(1h)\nprint("late", args.n)\n',
    "quick": 'print("done", args.n)\n',
}

# kind: (program, command, extra options, how many good runs, status once made, due for a worker)
KINDS = {
    "wait": ("waits", "run", (), 12, "suspended", False),
    "sig": ("waits", "run", (), 4, "suspended", True),  # then sent its signal
    "due": ("short", "run", ("--detach",), 8, "suspended", True),
    "long": ("long", "run", (), 6, "suspended", False),
    "done": ("quick", "run", (), 10, "completed", False),
    "queued": ("quick", "submit", (), 10, "queued", True),
}

# The damaged runs: id -> (the kind it is made as, its damage: see damage()).
DAMAGED = {
    "bad-flip-due": ("due", "flip"),
    "bad-flip-long": ("long", "flip"),
    "bad-half-wait": ("wait", "half"),
    "bad-half-queued": ("queued", "half"),
    "bad-garbage-done": ("done", "garbage"),
    "bad-garbage-due": ("due", "garbage"),
    "bad-mailbox-sig": ("sig", "mailbox"),
}
BARE = "bad-bare-due"  # a folder holding only its lock: no record at all
GOOD_IDS = [f"{kind}{i:02}" for kind, spec in KINDS.items() for i in range(spec[3])]
KIND_OF = {**{i: re.match(r"[a-z]+", i).group(0) for i in GOOD_IDS}, **{i: k for i, (k, _) in DAMAGED.items()},
           BARE: "due"}
# Names that are not runs: folders and files in runs/, hints in wake/ (one names no run).
GARBAGE_RUNS = ["bad name!", ".hidden", "x" * 80, "-dash", "notafolder"]
# 19 nines: past int64, once read as a time long past.
GARBAGE_WAKE = ["garbage", "-", "12-", "-ghost", "9999999999999999999-long00", "99999999999999999999999999-due00",
                "0-bad name!", "0-ghost", "0000000000000000000-" + "y" * 80, "0000000000000000000-.hidden", "subfolder"]
GHOST_HINT = "0000000000000000000-ghost"  # a hint for a run that does not exist


def run_files(store_dir, run_id):
    """The regular files of a run folder other than its lock (any depth): path -> size."""
    folder = os.path.join(store_dir, "runs", run_id)
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            if os.path.relpath(p, folder) != "lock" and os.path.isfile(p) and not os.path.islink(p):
                out[p] = os.path.getsize(p)
    return out


def snapshot(path):
    """Every file under path (or the file itself) with its bytes; folders as None. Not the
    index's index.sqlite-shm: SQLite's shared memory between the processes that read the
    index (their read marks), which every reader writes; it holds no data."""
    if os.path.isfile(path):
        return {"": open(path, "rb").read()}
    out = {}
    for root, dirs, names in os.walk(path):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), path) + "/"] = None
        for n in names:
            p = os.path.join(root, n)
            if n != "index.sqlite-shm":
                out[os.path.relpath(p, path)] = open(p, "rb").read()
    return out


def largest(store_dir, run_id):
    files = run_files(store_dir, run_id)
    return max(files, key=lambda p: (files[p], p))


def damage(store_dir, run_id, how, rng):
    if how == "mailbox":
        return  # done as its signal is sent (make_store): the mailbox is the file that signal changed
    path = largest(store_dir, run_id)
    data = open(path, "rb").read()
    if how == "flip":  # a few bytes in the middle
        mid = len(data) // 2
        data = data[:mid] + bytes(b ^ 0xA5 for b in data[mid:mid + 4]) + data[mid + 4:]
    elif how == "half":
        data = data[:len(data) // 2]
    elif how == "garbage":
        data = bytes(rng.randrange(256) for _ in range(len(data)))
    open(path, "wb").write(data)


def spawn_all(commands, batch=8):
    """Runs the flow commands a batch at a time (runs are made faster side by side):
    (command, exit code, stderr) of each, in order."""
    codes = []
    for i in range(0, len(commands), batch):
        procs = [subprocess.Popen([FLOW, *c], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in commands[i:i + batch]]
        for p, c in zip(procs, commands[i:i + batch]):
            _, err = p.communicate(timeout=60)
            codes.append((c, p.returncode, err.decode(errors="replace")))
    return codes


def make_store():
    """The case's store: 50 good runs and 8 to damage, made side by side, the signals sent,
    then the damage done. The damaged mailbox is the one file of shared/ that its run's
    signal changed (whatever the file is named). Returns (store, that mailbox's path)."""
    s = store()
    paths = {name: program(f"{name}.flow", text) for name, text in PROGRAMS.items()}
    commands, expected = [], []
    for run_id, kind in KIND_OF.items():
        prog, command, extra, _, made_as, _ = KINDS[kind]
        commands.append([command, paths[prog], "--store", s, "--run-id", run_id, "--arg", f"n={run_id}", *extra])
        expected.append(75 if made_as == "suspended" else 0)
    made = spawn_all(commands)
    made_at = time.monotonic()
    bad = [(c, rc, err) for (c, rc, err), want in zip(made, expected) if rc != want]
    assert not bad, f"runs not made as planned: {bad}"
    sigs = [i for i, k in KIND_OF.items() if k == "sig"]
    mailbox_id = next(i for i, (_, how) in DAMAGED.items() if how == "mailbox")
    shared_dir = os.path.join(s, "shared")
    for run_id in sigs:
        if run_id == mailbox_id:
            continue
        r = flow("signal", run_id, "go", '"yes"', "--store", s)
        assert r.returncode == 0, r.stderr
    before = snapshot(shared_dir)
    r = flow("signal", mailbox_id, "go", '"yes"', "--store", s)
    assert r.returncode == 0, r.stderr
    after = snapshot(shared_dir)
    changed = [p for p in after if after[p] is not None and before.get(p) != after[p]]
    assert len(changed) == 1, f"the signal changed {changed} in shared/"
    mailbox = os.path.join(shared_dir, changed[0])
    data = bytearray(open(mailbox, "rb").read())
    data[len(data) // 2] ^= 0x5A
    open(mailbox, "wb").write(bytes(data))
    rng = random.Random(6)
    for run_id, (_, how) in DAMAGED.items():
        damage(s, run_id, how, rng)
    folder = os.path.join(s, "runs", BARE)
    for entry in os.listdir(folder):
        if entry != "lock":
            p = os.path.join(folder, entry)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)
    for name in GARBAGE_RUNS:
        p = os.path.join(s, "runs", name)
        if name == "notafolder":
            open(p, "wb").write(b"\x00garbage")
        else:
            os.makedirs(p)
            open(os.path.join(p, "run"), "wb").write(b"garbage")
    for name in [*GARBAGE_WAKE, GHOST_HINT]:
        p = os.path.join(s, "wake", name)
        os.makedirs(p) if name == "subfolder" else open(p, "wb").write(b"")
    # The short timers (50 ms) are due before any case looks (a pause, not an assertion).
    time.sleep(max(0.0, made_at + 0.1 - time.monotonic()))
    return s, mailbox


def clean(*results):
    """No process ended by a signal or with a sanitizer's report."""
    return all(r.returncode >= 0 and "Sanitizer" not in r.stderr and "runtime error:" not in r.stderr for r in results)


def folders(s, ids):
    return {i: snapshot(os.path.join(s, "runs", i)) for i in ids}


def names_run(text, run_id):
    """text names the run (`run ID` followed by no more of an id)."""
    return re.search(rf"\brun {re.escape(run_id)}(?![\w.-])", text) is not None


def listed(r, json_out=False):
    """id -> status from flow runs (text or --json)."""
    if json_out:
        return {x["id"]: x["status"] for x in json.loads(r.stdout)}
    return dict(line.split()[:2] for line in r.stdout.splitlines()[1:] if line.strip())


def made_as(run_id):
    return KINDS[KIND_OF[run_id]][4]


def due(run_id):
    return KINDS[KIND_OF[run_id]][5]


@case
def runs_lists_good_runs_and_names_damage():
    """flow runs (text, --json, --status suspended): every good run with its status; each
    damaged run named on stderr as unreadable or listed as it was made (damage a listing
    cannot see: the record is whole); the bare folder and names that are not runs neither;
    exit 3 when a run was named."""
    s, _ = make_store()
    for args, want in ((["runs"], None), (["runs", "--json"], None), (["runs", "--status", "suspended"], "suspended")):
        label = " ".join(args)
        r = flow(*args, "--store", s)
        check(f"{label}: no crash", clean(r), f"{r.returncode} {r.stderr[-2000:]}")
        got = listed(r, "--json" in args)
        good = {i: made_as(i) for i in GOOD_IDS if want in (None, made_as(i))}
        wrong = {i: (got.get(i), st) for i, st in good.items() if got.get(i) != st}
        check(f"{label}: every good run listed with its status", not wrong, f"{wrong}")
        named = {i for i in [*DAMAGED, BARE] if names_run(r.stderr, i)}
        misread = {i: got.get(i) for i in DAMAGED if i not in named and got.get(i) not in (None, made_as(i))}
        unseen = {i for i in DAMAGED if i not in named and i not in got and (want is None or made_as(i) == want)}
        check(f"{label}: each damaged run named unreadable on stderr or listed as it was",
              not misread and not unseen, f"misread {misread} unseen {unseen} stderr {r.stderr}")
        check(f"{label}: a run whose record is damaged is named (the queued run cut to half)",
              "bad-half-queued" in named, r.stderr)
        others = set(got) - set(GOOD_IDS) - set(DAMAGED)
        check(f"{label}: neither the bare folder nor names that are not runs are listed", not others, f"{others}")
        strays = [line for line in r.stderr.splitlines() if not any(names_run(line, i) for i in DAMAGED)]
        check(f"{label}: stderr is only about damaged runs", not strays, f"{strays}")
        check(f"{label}: exit 3, since a run was named", r.returncode == 3, f"{r.returncode}")
        if want:
            check(f"{label}: only {want} runs", set(got.values()) == {want}, f"{set(got.values())}")


@case
def worker_once_runs_good_due_runs_and_skips_damage():
    """flow worker --once: every good due run (a timer due, a signal arrived, queued)
    completes, once; each damaged run is reported at most once (skipped, or its child's
    exit 3 reported as a crash: docs/operating.md, "Workers") and never completes; good
    runs not due are not started and their folders not touched; names in wake/ that are
    not hints (a time past int64 among them) are left as they are; exit 1 when a child
    crashed, else 0."""
    s, _ = make_store()
    idle = [i for i in GOOD_IDS if not due(i)]
    idle_before = folders(s, idle)
    wake_before = set(os.listdir(os.path.join(s, "wake")))
    w = flow("worker", "--once", "--json", "--store", s, timeout=120)
    check("the worker does not crash", clean(w), f"{w.returncode} {w.stderr[-3000:]}")
    events = {}
    for line in w.stdout.splitlines():
        e = json.loads(line)
        events.setdefault(e.get("run", ""), []).append(e)
    kinds = {i: [e["event"] for e in ev] for i, ev in events.items()}
    good_due = [i for i in GOOD_IDS if due(i)]
    wrong = {i: kinds.get(i) for i in good_due if kinds.get(i) != ["started", "completed"]}
    check(f"each of the {len(good_due)} good due runs is started once and completes", not wrong, f"{wrong}")
    after = listed(flow("runs", "--json", "--store", s), True)
    not_done = {i: after.get(i) for i in good_due if after.get(i) != "completed"}
    check("flow runs then says completed for each of them", not not_done, f"{not_done}")
    said = {"due": "woke {}", "sig": "got {} yes", "queued": "done {}"}
    missing = [i for i in good_due if w.stderr.count(said[KIND_OF[i]].format(i) + "\n") != 1]
    check("each printed its line once (--json: the programs' output on stderr)", not missing, f"{missing}")
    touched = [i for i in idle if kinds.get(i)]
    check("good runs not due get no event", not touched, f"{ {i: kinds[i] for i in touched} }")
    changed = [i for i, snap in folders(s, idle).items() if snap != idle_before[i]]
    check("their folders are byte for byte as they were", not changed, f"{changed}")
    unchanged_status = {i: after.get(i) for i in idle if after.get(i) != made_as(i)}
    check("and their statuses as they were", not unchanged_status, f"{unchanged_status}")
    # Damage found before a child (the record, the mailbox) or by it (exit 3): skipped, once,
    # naming the run; never a crash, retried and poisoned.
    allowed = (["skipped"], ["started", "skipped"])
    bad = {}
    for i in DAMAGED:
        ev = events.get(i, [])
        k = [e["event"] for e in ev]
        detail = " ".join(e.get("detail", "") for e in ev)
        if k == ["started", "skipped"] and not names_run(detail, i):
            bad[i] = ev
        elif k not in allowed and (due(i) or k):
            bad[i] = ev
    check("each damaged due run is reported once as skipped, naming it; the others at most once",
          not bad, f"{bad}")
    done_bad = {i: after.get(i) for i in DAMAGED if after.get(i) not in (None, made_as(i))}
    check("no damaged run changes status", not done_bad, f"{done_bad}")
    strays = set(events) - set(GOOD_IDS) - set(DAMAGED) - {""}
    check("no event for the bare folder, the ghost hint or names that are not runs", not strays,
          f"{ {i: kinds[i] for i in strays} }")
    check("no event without a run (the pass itself goes without trouble)", not events.get(""), f"{events.get('')}")
    crashed = any(k == ["started", "crashed"] for k in kinds.values())
    check("no child crashed, and the pass exits 0", not crashed and w.returncode == 0, f"{w.returncode} crashed={crashed}")
    garbage = set(GARBAGE_WAKE) & wake_before
    gone = garbage - set(os.listdir(os.path.join(s, "wake")))
    check("names in wake/ that are not hints stay, none read as a time", not gone, f"{gone}")


@case
def damaged_runs_refused_neighbours_served():
    """resume, inspect and history of each damaged run: exit 3 naming it (a run whose
    record says it ended is not resumed at all: exit 2; a damaged mailbox is no part of a
    run's own state, which inspect and history read: they may serve it); a folder that
    holds only a lock is no run (exit 2). The good run beside each: served."""
    s, _ = make_store()
    neighbour = {"due": "due00", "long": "long00", "wait": "wait00", "queued": "queued00", "done": "done00", "sig": "sig00"}
    for run_id, (kind, how) in DAMAGED.items():
        for command in ("resume", "inspect", "history"):
            r = flow(command, run_id, "--store", s)
            ok = r.returncode == 3 and run_id in r.stderr
            if command == "resume" and made_as(run_id) == "completed" and r.returncode == 2:
                ok = "already completed" in r.stderr and run_id in r.stderr
            if command != "resume" and how == "mailbox" and r.returncode == 0:
                ok = run_id in r.stdout
            check(f"{command} {run_id}: refused with exit 3 naming it, no crash", ok and clean(r),
                  f"{r.returncode} {r.stdout[-500:]} {r.stderr[-1000:]}")
        good = neighbour[kind]
        for command in ("inspect", "history"):
            r = flow(command, good, "--store", s)
            if kind == "queued":  # not started: nothing to show yet, and said so (not damage)
                check(f"{command} {good} beside it says it has not started (exit 2)", r.returncode == 2 and
                      "has not started" in r.stderr and clean(r), f"{r.returncode} {r.stderr}")
            else:
                check(f"{command} {good} beside it works", r.returncode == 0 and good in r.stdout and clean(r),
                      f"{r.returncode} {r.stderr}")
    for command in ("resume", "inspect", "history"):
        r = flow(command, BARE, "--store", s)
        check(f"{command} of a folder with only its lock: no run (exit 2), named", r.returncode == 2 and
              f"no run {BARE}" in r.stderr and clean(r), f"{r.returncode} {r.stderr}")
    r = flow("resume", "long00", "--store", s)
    check("resume of a good run not yet due suspends it again (exit 75)", r.returncode == 75 and clean(r),
          f"{r.returncode} {r.stderr}")
    r = flow("resume", "due00", "--store", s)
    check("resume of a good due run completes it", r.returncode == 0 and r.stdout == "woke due00\n", f"{r.returncode} {r.stdout} {r.stderr}")
    r = flow("resume", "queued00", "--store", s)
    check("resume of a good queued run runs it", r.returncode == 0 and r.stdout == "done queued00\n", f"{r.returncode} {r.stdout} {r.stderr}")


@case
def signals_still_reach_good_runs():
    """flow signal to good runs beside the damage delivers, and they go on (by hand and by
    a worker); to a run whose record or mailbox is damaged it is exit 3 naming the run."""
    s, _ = make_store()
    for run_id in ("wait00", "wait01"):
        r = flow("signal", run_id, "go", f'"for {run_id}"', "--store", s)
        check(f"signal {run_id}: delivered", r.returncode == 0 and clean(r), f"{r.returncode} {r.stderr}")
    for run_id in ("bad-half-queued", "bad-mailbox-sig"):
        r = flow("signal", run_id, "go", '"x"', "--store", s)
        check(f"signal {run_id}: exit 3 naming the run", r.returncode == 3 and run_id in r.stderr and clean(r),
              f"{r.returncode} {r.stderr}")
    r = flow("resume", "wait00", "--store", s)
    check("the run resumed by hand gets its signal", r.returncode == 0 and r.stdout == "got wait00 for wait00\n",
          f"{r.returncode} {r.stdout} {r.stderr}")
    w = flow("worker", "--once", "--store", s, timeout=120)
    check("a worker pass does not crash", clean(w), f"{w.returncode} {w.stderr[-2000:]}")
    check("the run left to the worker gets its signal", "got wait01 for wait01\n" in w.stdout, w.stdout + w.stderr[-2000:])
    got = listed(flow("runs", "--json", "--store", s), True)
    check("both completed, the other waiting runs still suspended",
          got.get("wait00") == got.get("wait01") == "completed" and
          all(got.get(f"wait{i:02}") == "suspended" for i in range(2, 12)), f"{got}")


@case
def listing_and_gc_leave_damage_untouched():
    """flow runs (any status) and flow gc --dry-run change nothing in the store; flow gc
    removes the good ended runs, keeps (and names) the runs it cannot read, and leaves
    every damaged folder byte for byte as it was, or removes it whole when its record
    says it ended; names that are not runs stay."""
    s, mailbox = make_store()
    before = snapshot(s)
    for args in (["runs"], ["runs", "--json"], ["runs", "--status", "suspended"], ["runs", "--status", "queued"],
                 ["runs", "--status", "completed"], ["gc", "--older-than", "0s", "--dry-run"]):
        r = flow(*args, "--store", s)
        check(f"{' '.join(args)}: no crash", clean(r), f"{r.returncode} {r.stderr}")
    now = snapshot(s)
    diff = sorted(p for p in set(before) | set(now) if before.get(p) != now.get(p))
    check("listing (and a dry run of gc) leaves the whole store byte for byte as it was", not diff, f"{diff[:20]}")
    damaged_before = folders(s, [*DAMAGED, BARE, *GARBAGE_RUNS])
    mailbox_before = open(mailbox, "rb").read()
    g = flow("gc", "--older-than", "0s", "--store", s)
    check("gc: no crash, exit 0", clean(g) and g.returncode == 0, f"{g.returncode} {g.stderr}")
    runs_dir = os.path.join(s, "runs")
    done = [i for i in GOOD_IDS if made_as(i) == "completed"]
    left = [i for i in done if os.path.exists(os.path.join(runs_dir, i))]
    check(f"gc removes the {len(done)} good completed runs", not left, f"{left} {g.stdout}")
    kept = [i for i in GOOD_IDS if made_as(i) != "completed" and not os.path.isdir(os.path.join(runs_dir, i))]
    check("gc keeps every good run that has not ended", not kept, f"{kept}")
    after = folders(s, damaged_before)
    harmed = [i for i, snap in after.items() if snap != damaged_before[i]
              and not (snap == {} and i in DAMAGED and made_as(i) == "completed" and not os.path.exists(os.path.join(runs_dir, i)))]
    check("every damaged folder and name that is not a run is as it was (or, ended, removed whole)", not harmed,
          f"{harmed}")
    unread = [i for i in DAMAGED if names_run(g.stderr, i)]
    check("gc names the runs it cannot read as kept", "bad-half-queued" in unread and
          all(f"run {i}" in line and "(kept)" in line for line in g.stderr.splitlines() for i in unread if f"run {i}:" in line),
          g.stderr)
    check("the damaged mailbox is kept as it was", snapshot(mailbox) == {"": mailbox_before})


if __name__ == "__main__":
    main()
