#!/usr/bin/env python3
"""A run's state is never behind what its record, mark or mailbox say without Flow saying
so (exit 3): damaged mailboxes, emptied or cut database logs, missing marks, images
without a checkpoint, imports that fail half-way, reads that would write."""
import ctypes, functools, json, os, struct, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import add_case, case, check, flow, main, program, status, tmp  # noqa: E402

@functools.cache
def _xxh():
    lib = ctypes.CDLL("libxxhash.so.0")
    lib.XXH3_64bits.restype = ctypes.c_uint64
    lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lib


def xxh3(b):
    return _xxh().XXH3_64bits(b, len(b))


def files(folder):
    """Every file under folder, with its bytes."""
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            out[os.path.relpath(p, folder)] = open(p, "rb").read()
    return out


# The image format (docs/checkpoint.md): enough of it to build the images a user could craft.
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(b, i):
    n = shift = 0
    while True:
        n |= (b[i] & 0x7F) << shift
        shift += 7
        i += 1
        if not b[i - 1] & 0x80:
            return n, i


def read_bytes(b, i):
    n, i = read_varint(b, i)
    return b[i:i + n], i + n


def parse_image(data):
    """An image of version 2 (what export writes): its source is dropped, and build_image
    writes version 1 (still imported), so that a test changes only what it means to."""
    assert struct.unpack("<I", data[8:12])[0] == 2, "an image of another version: update this parser"
    p = data[28:]
    record, i = read_bytes(p, 0)
    code, i = read_bytes(p, i)
    has_source, i = p[i], i + 1
    if has_source:
        _, i = read_bytes(p, i)
    n, i = read_varint(p, i)
    entries = []
    for _ in range(n):
        k, i = read_bytes(p, i)
        v, i = read_bytes(p, i)
        entries.append((k, v))
    mark, i = read_varint(p, i)
    assert i == len(p), "bytes after the mark: update this parser"
    return record, code, entries, mark


def build_image(record, code, entries, mark):
    p = varint(len(record)) + record + varint(len(code)) + code + varint(len(entries))
    for k, v in entries:
        p += varint(len(k)) + k + varint(len(v)) + v
    p += varint(mark)
    return b"\x7fFLOWVM\n" + struct.pack("<IQQ", 1, len(p), xxh3(p)) + p


def with_code_hash(record, code_hash):
    """The sealed record with another code hash (re-sealed: only the hash is wrong)."""
    payload = record[9:]
    rid, i = read_bytes(payload, 0)
    prog, i = read_bytes(payload, i)
    _, i = read_bytes(payload, i)
    new = varint(len(rid)) + rid + varint(len(prog)) + prog + varint(len(code_hash)) + code_hash + payload[i:]
    return bytes([record[0]]) + struct.pack("<Q", xxh3(new)) + new


def db_log(store, run_id):
    folder = os.path.join(store, "runs", run_id, "db")
    return os.path.join(folder, [f for f in os.listdir(folder) if f.endswith(".log")][0])


def suspended_run(store, run_id, *extra):
    """A run that made 20 appends to tmp("appends.txt") and waits for a signal it has been sent.
    Its wait times out within a minute, so that the run stays in files (runs/ID/run, mark,
    db/) rather than packed (docs/checkpoint.md, "Packed runs"): these tests damage those files."""
    out = tmp("appends.txt")
    if os.path.exists(out):
        os.remove(out)
    appends = program("appends.flow", f'''
for i in range(20) {{ fs.append("{out}", "${{i}}\\n") }}
print("got", signal.wait("go", {{timeout: 50s}}))
''')
    r = flow("run", appends, "--store", store, "--run-id", run_id, *extra)
    assert r.returncode == 75, r.stderr
    flow("signal", run_id, "go", "1", "--store", store)


def lines():
    return len(open(tmp("appends.txt")).read().splitlines())


def cut_log(store, run_id):
    log = db_log(store, run_id)
    with open(log, "r+b") as f:
        f.truncate(os.path.getsize(log) // 2)


@case
def emptied_log_no_mark():
    """Row 12: the log emptied and the mark gone: the record says 20 effects, the database none."""
    s12 = tmp("s12")
    suspended_run(s12, "r")
    open(db_log(s12, "r"), "w").close()
    os.remove(os.path.join(s12, "runs", "r", "mark"))
    r = flow("resume", "r", "--store", s12)
    check("an emptied log with no mark is corruption (exit 3), nothing done again",
          r.returncode == 3 and "run r" in r.stderr and lines() == 20, f"{r.returncode} {lines()} {r.stderr}")


@case
def async_emptied_log():
    s12a = tmp("s12a")
    suspended_run(s12a, "a", "--durability", "async")
    open(db_log(s12a, "a"), "w").close()
    r = flow("resume", "a", "--store", s12a)
    check("an async run with its log emptied is corruption (exit 3), nothing done again",
          r.returncode == 3 and lines() == 20, f"{r.returncode} {lines()} {r.stderr}")


def cut_log_and_mark(how):
    """Row 13: the log cut to half, the mark deleted or emptied."""
    s13 = tmp("s13")
    suspended_run(s13, "h")
    cut_log(s13, "h")
    mark = os.path.join(s13, "runs", "h", "mark")
    if how == "deleted":
        os.remove(mark)
    else:
        open(mark, "w").close()
    r = flow("resume", "h", "--store", s13)
    check(f"a log cut to half with the mark {how} is corruption (exit 3), nothing done again",
          r.returncode == 3 and lines() == 20, f"{r.returncode} {lines()} {r.stderr}")


for how in ("deleted", "emptied"):
    add_case(f"cut_log_mark_{how}", cut_log_and_mark, how)


@case
def missing_mark():
    """The mark alone gone (the database whole): still refused, since a sync run always has one."""
    s13m = tmp("s13m")
    suspended_run(s13m, "h")
    os.remove(os.path.join(s13m, "runs", "h", "mark"))
    r = flow("resume", "h", "--store", s13m)
    check("a sync run whose mark is missing is refused, not read as checkpoint 0",
          r.returncode == 3 and "mark is missing" in r.stderr, r.stderr)


READS = (["inspect", "h"], ["history", "h"], ["trace", "h"], ["export", "h", "-o", "EXPORT"])


@case
def rolled_back_reads():
    """Row 34: reading a rolled-back run (mark intact) says so too."""
    s34 = tmp("s34")
    suspended_run(s34, "h")
    cut_log(s34, "h")
    for command in READS:
        r = flow(*[tmp("x.fvm") if a == "EXPORT" else a for a in command], "--store", s34)
        check(f"{command[0]} of a rolled-back run is exit 3", r.returncode == 3 and "rolled back" in r.stderr,
              f"{r.returncode} {r.stderr}")


def export_untouched(store, image):
    """Row 48: reading a run writes nothing to its database (and EXPORT is written to IMAGE)."""
    db = os.path.join(store, "runs", "h", "db")
    before = files(db)
    for command in READS:
        r = flow(*[image if a == "EXPORT" else a for a in command], "--store", store)
        check(f"{command[0]} leaves the run's database byte for byte as it was",
              r.returncode == 0 and files(db) == before, f"{r.returncode} {r.stderr} {sorted(files(db))} {sorted(before)}")


@case
def reads_write_nothing():
    s48 = tmp("s48")
    suspended_run(s48, "h")
    export_untouched(s48, tmp("y.fvm"))


@case
def bad_images():
    """Rows 14 and 33: images that would resume from nothing, or name other code, are
    refused before anything is written."""
    s = tmp("s")
    suspended_run(s, "h")
    exported = tmp("y.fvm")
    r = flow("export", "h", "-o", exported, "--store", s)
    image = open(exported, "rb").read()
    record, code, entries, mark = parse_image(image)
    bad = {  # label: (image, what the refusal says)
        "no database entries": (build_image(record, code, [], mark), "holds no checkpoint"),
        "no checkpoint among its entries":
            (build_image(record, code, [e for e in entries if not e[0].startswith(b"s")], mark), "holds no checkpoint"),
        "a mark ahead of its checkpoint": (build_image(record, code, entries, mark + 5), "was acknowledged"),
        "a code hash of another program":
            (build_image(with_code_hash(record, b"0" * 32), code, entries, mark), "code does not match its record"),
        "a code hash that is a path":
            (build_image(with_code_hash(record, b"../../../../tmp/evil"), code, entries, mark), "malformed"),
    }
    target = tmp("imports")
    os.makedirs(target, exist_ok=True)
    rebuilt = program("rebuilt.fvm", build_image(record, code, entries, mark))
    r = flow("import", rebuilt, "--store", tmp("rebuilt"))
    check("the image taken apart and built again unchanged imports (so each refusal below is for its change)",
          r.returncode == 0 and r.stdout.strip() == "h", f"{r.returncode} {r.stderr}")
    for label, (data, says) in bad.items():
        path = program("bad.fvm", data)
        before = files(target)
        r = flow("import", path, "--store", target)
        check(f"an image with {label} is refused (exit 3, saying so) and leaves nothing behind",
              r.returncode == 3 and says in r.stderr and files(target) == before and flow("runs", "--store", target).stdout.count("\n") <= 1,
              f"{r.returncode} {r.stderr} {sorted(set(files(target)) - set(before))}")
    r = flow("import", exported, "--store", target)
    check("the whole image imports", r.returncode == 0 and r.stdout.strip() == "h", r.stderr)


def shown_record(store, run_id):
    """The run's record as `flow runs --json` shows it, but for its size on disk, which
    changes when the run is unpacked to be executed (docs/checkpoint.md, "Packed runs")."""
    runs = json.loads(flow("runs", "--json", "--store", store).stdout)
    record = next(r for r in runs if r["id"] == run_id)
    record.pop("size_bytes", None)
    return record


@case
def damaged_mailbox():
    """Row 11: one flipped byte in a run's mailbox is store damage (exit 3, naming the run),
    never a catchable error; the run stays suspended, its record untouched."""
    approval = program("approval.flow", '''
try {
  let a = signal.wait("approve")
  print("approved", a)
} catch e {
  print("caught", e.kind)
}
''')
    s11 = tmp("s11")
    flow("run", approval, "--store", s11, "--run-id", "chg")
    flow("signal", "chg", "approve", "true", "--store", s11)
    shared = os.path.join(s11, "shared")
    mailbox = os.path.join(shared, [f for f in os.listdir(shared)][0])
    data = bytearray(open(mailbox, "rb").read())
    data[-3] ^= 1
    open(mailbox, "wb").write(bytes(data))
    record_before = shown_record(s11, "chg")
    w = flow("worker", "--once", "--store", s11)
    check("the worker reports the damaged mailbox, naming the run", "chg" in w.stderr and "mailbox" in w.stderr,
          w.stderr)
    r = flow("resume", "chg", "--store", s11)
    check("resuming with a damaged mailbox is exit 3 naming the run, not a catchable error",
          r.returncode == 3 and "run chg" in r.stderr and "caught" not in r.stdout, r.stdout + r.stderr)
    check("the run stays suspended, its record untouched",
          status(s11, "chg") == "suspended" and shown_record(s11, "chg") == record_before,
          status(s11, "chg"))


@case
def secret_masked():
    """Row 42: inspect shows a run's secret masked, without needing its value."""
    secret_prog = program("secret.flow", 'let key = secret("FLOW_TEST_SECRET")\nprint("have", key)\nsleep(1h)\n')
    s42 = tmp("s42")
    flow("run", secret_prog, "--store", s42, "--run-id", "sec", env=dict(os.environ, FLOW_TEST_SECRET="hunter2value"))
    env = {k: v for k, v in os.environ.items() if k != "FLOW_TEST_SECRET"}
    r = flow("inspect", "sec", "--store", s42, env=env)
    check("inspect of a run holding a secret needs no value and shows ***",
          r.returncode == 0 and "key = ***" in r.stdout.replace('"', "") and "hunter2" not in r.stdout,
          f"{r.returncode} {r.stdout} {r.stderr}")
    r = flow("resume", "sec", "--store", s42, env=env)
    check("resume still needs the secret's value", r.returncode == 2 and "FLOW_TEST_SECRET" in r.stderr, r.stderr)


main()
