#!/usr/bin/env python3
"""End-to-end tests of durable runs through the flow command: run records, resume,
locks, concurrent processes on one store, unknown and finished runs, crashed runs, and
damaged stores (every file of a run's database flipped or truncated)."""
import json, os, shutil, signal, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, folder_store_case, check, fixture, flow, main, program, shared, store, tmp  # noqa: E402

SQUARES = 'let xs = []\nfor i in range(5) { xs.push(i * i)\n print("i", i) }\nprint("sum", xs)\n'


@case
def records():
    """A run: id and status on stderr, output on stdout, a record listed by `flow runs`."""
    prog = program("p.flow", SQUARES)
    r = flow("run", prog, "--store", store(), "--run-id", "first", "--arg", "who=me")
    check("run prints its output on stdout and the run id on stderr",
          r.returncode == 0 and r.stdout.endswith("sum [0,1,4,9,16]\n") and "first" in r.stderr and "first" not in r.stdout,
          r.stdout + r.stderr)
    runs = json.loads(flow("runs", "--json", "--store", store()).stdout)
    check("runs --json lists id, program and status",
          len(runs) == 1 and runs[0]["id"] == "first" and runs[0]["status"] == "completed" and runs[0]["program"] == prog,
          runs)
    r = flow("run", prog, "--store", store(), "--run-id", "first")
    check("a taken run id is refused", r.returncode == 2 and "already exists" in r.stderr, r.stderr)
    r = flow("run", prog, "--store", store(), "--run-id", "../escape")
    check("a run id that is not a name is refused", r.returncode == 2 and "not a valid run id" in r.stderr, r.stderr)
    r = flow("resume", "nosuchrun", "--store", store())
    check("resume of an unknown run is a clear error", r.returncode == 2 and "no run nosuchrun" in r.stderr, r.stderr)
    r = flow("resume", "first", "--store", store())
    check("resume of a completed run is a clear error", r.returncode == 2 and "already completed" in r.stderr, r.stderr)
    r = flow("runs", "--store", tmp("empty"))
    check("runs of a store that does not exist lists nothing", r.returncode == 0, r.stderr)


@folder_store_case
def store_choice():
    """FLOW_STORE chooses the store; without it and --store, ./.flow."""
    prog = program("p.flow", SQUARES)
    r = flow("run", prog, "--run-id", "via-env", env=dict(os.environ, FLOW_STORE=store()), cwd=tmp())
    check("FLOW_STORE names the store", r.returncode == 0 and os.path.isdir(os.path.join(store(), "runs", "via-env")),
          r.stderr)
    r = flow("run", prog, "--run-id", "default-store", cwd=tmp())
    check("the default store is ./.flow",
          r.returncode == 0 and os.path.isdir(tmp(".flow", "runs", "default-store")), r.stderr)


@case
def live_run():
    """One executor per run; the run resumes on the code it started with, whatever happens to the file."""
    slow = program("slow.flow", 'print("start")\nsleep(8s)\nprint("end", args.n)\n')
    p = subprocess.Popen([FLOW, "run", slow, "--store", store(), "--run-id", "slow", "--arg", "n=7"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    time.sleep(0.2)
    r = flow("resume", "slow", "--store", store())
    check("a second executor of a live run is refused, naming the pid",
          r.returncode != 0 and f"pid {p.pid}" in r.stderr, r.stderr)
    live = json.loads(flow("runs", "--json", "--store", store(), "--status", "running").stdout)
    check("runs shows the live run as running", [x["id"] for x in live] == ["slow"], live)
    r = flow("inspect", "slow", "--store", store())
    check("inspect reads a live run (from its process)", r.returncode == 0 and "status running" in r.stdout,
          r.stdout + r.stderr)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    crashed = json.loads(flow("runs", "--json", "--store", store(), "--status", "crashed").stdout)
    check("a killed run shows as crashed", [x["id"] for x in crashed] == ["slow"], crashed)
    program("slow.flow", 'print("the file changed")\n')
    r = flow("inspect", "slow", "--store", store())
    check("inspect shows frames, pc, line and globals", r.returncode == 0 and "<script> at pc" in r.stdout and
          "slow.flow:1" in r.stdout, r.stdout + r.stderr)
    # The sleep was in flight: resume runs it again (real time), with the stored code.
    p2 = subprocess.Popen([FLOW, "resume", "slow", "--store", store()], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    time.sleep(0.3)
    r = flow("history", "slow", "--store", store())
    check("history reads a live run (from its process)", r.returncode == 0 and "sleep" in r.stdout, r.stdout + r.stderr)
    p2.kill()
    p2.wait()
    check("the first run printed before it was killed", line == "start\n", line)


@case
def concurrent():
    """Concurrent processes on one store, and `flow runs` while they run."""
    prog = program("p.flow", SQUARES)
    procs = [subprocess.Popen([FLOW, "run", prog, "--store", store(), "--run-id", f"c{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(6)]
    listing = flow("runs", "--json", "--store", store())
    outs = [pr.communicate(timeout=60) for pr in procs]
    check("runs works while other processes run", listing.returncode == 0, listing.stderr)
    check("six processes run six runs on one store at once",
          all(pr.returncode == 0 for pr in procs) and all(o[0].endswith("sum [0,1,4,9,16]\n") for o in outs),
          [o[1] for o in outs])
    done = json.loads(flow("runs", "--json", "--store", store(), "--status", "completed").stdout)
    check("all six are recorded as completed", {f"c{i}" for i in range(6)} <= {x["id"] for x in done}, done)


@fixture
def victim():
    """A store with a completed run (c0) and a crashed one (victim), kept untouched as
    `pristine`, and the output of the crashed run's undamaged resume: (crashed, pristine, reference)."""
    pristine = shared("pristine")
    flow("run", program(shared("p.flow"), SQUARES), "--store", pristine, "--run-id", "c0")
    crash_prog = program(shared("crash.flow"),
                         'let m = {}\nfor i in range(8) { m["k${i}"] = [i, "v${i}"]\n print("at", i) }\nprint(m)\n')
    crashed = flow("run", crash_prog, "--store", pristine, "--run-id", "victim", crash="5:after-checkpoint")
    resumed = shared("resumed")
    shutil.copytree(pristine, resumed)
    return crashed, pristine, flow("resume", "victim", "--store", resumed)


@case
def crashed_run():
    crashed, _, reference = victim()
    check("the crash hook kills the run", crashed.returncode == -9, crashed.returncode)
    check("the crashed run resumes", reference.returncode == 0 and reference.stdout.startswith("at 5\n"), reference.stderr)


@fixture
def exported():
    """An image of the crashed run (flow export)."""
    image = shared("victim.fvm")
    with open(image, "wb") as f:
        e = subprocess.run([FLOW, "export", "victim", "--store", victim()[1]], stdout=f, stderr=subprocess.PIPE)
    return image, e


@case
def export_import():
    """A portable image: export the crashed run, import it into another store, resume there."""
    reference = victim()[2]
    image, e = exported()
    check("export writes an image of a crashed run", e.returncode == 0 and os.path.getsize(image) > 28, e.stderr)
    other_store = tmp("elsewhere")
    r = flow("import", image, "--store", other_store)
    check("import adds the run to another store", r.returncode == 0 and r.stdout.strip() == "victim", r.stderr)
    r = flow("resume", "victim", "--store", other_store)
    check("the imported run resumes with the same output", r.returncode == 0 and r.stdout == reference.stdout,
          r.stdout + r.stderr)
    r = flow("import", image, "--store", other_store)
    check("importing a run id that exists is refused", r.returncode == 2 and "already exists" in r.stderr, r.stderr)


@case
def damaged_images():
    data = open(exported()[0], "rb").read()
    for label, bad in [("truncated", data[:-10]), ("flipped", data[:40] + bytes([data[40] ^ 1]) + data[41:]),
                       ("not an image", b"hello")]:
        path = program("bad.fvm", bad)
        r = flow("import", path, "--store", tmp("third"))
        check(f"a damaged image ({label}) is refused with exit 3", r.returncode == 3, f"exit {r.returncode} {r.stderr}")


@case
def newer_format():
    """A store written by a newer flow: the record's format version is named, not misread."""
    newer = tmp("newer")
    shutil.copytree(victim()[1], newer)
    record_path = os.path.join(newer, "runs", "victim", "run")
    data = bytearray(open(record_path, "rb").read())
    data[0] = 9
    open(record_path, "wb").write(bytes(data))
    r = flow("resume", "victim", "--store", newer)
    check("a record of a newer format version is a clear error",
          r.returncode == 3 and "format version 9" in r.stderr, f"exit {r.returncode} {r.stderr}")


@case
def damaged_stores():
    """Damage every file of the run's database, its record and its code, one at a time."""
    _, pristine, reference = victim()
    db_dir = os.path.join(pristine, "runs", "victim", "db")
    targets = [os.path.join("runs", "victim", "db", f) for f in sorted(os.listdir(db_dir)) if f not in ("LOCK", "LOG", "LOG.old")]
    targets.append(os.path.join("runs", "victim", "run"))
    targets.append(os.path.join("runs", "victim", "mark"))
    code_dir = os.path.join(pristine, "code")
    targets += [os.path.join("code", f) for f in os.listdir(code_dir)]
    cases = 0
    for rel in targets:
        size = os.path.getsize(os.path.join(pristine, rel))
        damages = [("truncated to half", lambda b: b[: len(b) // 2]), ("emptied", lambda b: b"")]
        for at in sorted({0, size // 3, size // 2, size - 1} - {-1}):
            if 0 <= at < size:
                damages.append((f"byte {at} flipped", lambda b, at=at: b[:at] + bytes([b[at] ^ 0x5A]) + b[at + 1:]))
        for label, damage in damages:
            work = tmp("work")
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(pristine, work)
            path = os.path.join(work, rel)
            with open(path, "rb") as f:
                data = f.read()
            with open(path, "wb") as f:
                f.write(damage(data))
            try:
                r = flow("resume", "victim", "--store", work, timeout=30)
            except subprocess.TimeoutExpired:
                check(f"damaged {rel} ({label}) does not hang", False)
                continue
            cases += 1
            clear_error = r.returncode == 3 and "victim" in r.stderr and len(r.stderr.strip().splitlines()) >= 1
            same_result = r.returncode == 0 and r.stdout == reference.stdout
            if not (clear_error or same_result):
                check(f"damaged {rel} ({label}): exit 3 naming the run, or the very same result", False,
                      f"exit {r.returncode} stdout={r.stdout[:200]!r} stderr={r.stderr[:300]!r}")
            other = flow("inspect", "c0", "--store", work)
            if other.returncode != 0 and not rel.startswith("code"):  # c0 may share the damaged code
                check(f"damaged {rel} ({label}) leaves the other runs readable", False, other.stderr)
    check(f"{cases} damaged stores: each a clear error (exit 3) or an identical resume, never a crash", cases > 10)


main()
