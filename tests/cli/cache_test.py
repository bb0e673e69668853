#!/usr/bin/env python3
"""The compiled-program cache of `flow run` (docs/bytecode.md, "The program cache"): a
second run loads the module the first compiled; a changed source, a damaged entry, a cache
that is off, missing or unwritable never change what the program does; the folder stays
within its bounds. Every case uses its own cache folder (FLOW_CACHE_DIR)."""
import os, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, check, flow, main, program, store, tmp  # noqa: E402

MAX_ENTRIES = 512          # runtime/program_cache.h
MAX_BYTES = 64 << 20


def env_with(**values):
    """os.environ with the cache variables replaced: a value of None removes one."""
    env = {k: v for k, v in os.environ.items() if k not in ("FLOW_CACHE_DIR", "XDG_CACHE_HOME", "HOME")}
    env.update({k: v for k, v in values.items() if v is not None})
    return env


def run(path, cache, *args):
    return flow("run", "--ephemeral", path, *args, env=env_with(FLOW_CACHE_DIR=cache, HOME=tmp("home")))


def entries(cache):
    """The cache's entries (name -> bytes), without temporary files."""
    if not os.path.isdir(cache):
        return {}
    return {n: open(os.path.join(cache, n), "rb").read() for n in sorted(os.listdir(cache)) if n.endswith(".flowc")}


def all_files(folder):
    return [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs]


@case
def second_run_is_served_from_the_cache():
    cache = tmp("cache")
    path = program("p.flow", 'print("compiled from the source")\n')
    first = run(path, cache)
    kept = entries(cache)
    check("the first run prints its output", first.returncode == 0 and first.stdout == "compiled from the source\n",
          f"exit {first.returncode}: {first.stdout}{first.stderr}")
    check("the first run keeps one entry, NAME.flowc of 32 hex digits",
          len(kept) == 1 and all(len(n) == 38 and int(n[:32], 16) >= 0 for n in kept), str(list(kept)))
    check("the entry is bytecode (the .flowc magic)", all(b.startswith(b"\x7fFLOWBC\n") for b in kept.values()))
    second = run(path, cache)
    check("the second run prints the same and adds no entry",
          second.stdout == first.stdout and second.stderr == "" and entries(cache) == kept,
          f"{second.stdout}{second.stderr} {list(entries(cache))}")
    # Proof that a hit does not compile: put in the entry the bytecode of another program
    # compiled from the same path; the next run prints what that bytecode prints.
    program("p.flow", 'print("served from the cache")\n')
    other = tmp("other.flowc")
    compiled = flow("compile", path, "-o", other)
    program("p.flow", 'print("compiled from the source")\n')
    (name,) = kept
    with open(os.path.join(cache, name), "wb") as f:
        f.write(open(other, "rb").read())
    third = run(path, cache)
    check("a hit runs the entry without parsing the source",
          compiled.returncode == 0 and third.returncode == 0 and third.stdout == "served from the cache\n",
          f"exit {third.returncode}: {third.stdout}{third.stderr}")
    durable = flow("run", path, "--store", store(), env=env_with(FLOW_CACHE_DIR=tmp("durable-cache")))
    check("a durable run uses the cache too",
          durable.returncode == 0 and durable.stdout == "compiled from the source\n" and len(entries(tmp("durable-cache"))) == 1,
          f"exit {durable.returncode}: {durable.stdout}{durable.stderr}")


@case
def an_edited_import_is_never_served_stale():
    cache = tmp("cache")
    os.makedirs(tmp("lib"), exist_ok=True)
    program("lib/m.flow", "let v = 1\n")
    path = program("p.flow", 'import "lib/m.flow" as m\nprint(m.v)\n')
    outputs = []
    for text in ["let v = 1\n", "let v = 2\n", "let v = 2\n"]:
        program("lib/m.flow", text)
        outputs.append(run(path, cache).stdout)
    check("each edit of the imported file runs it as it is now", outputs == ["1\n", "2\n", "2\n"], str(outputs))
    os.remove(tmp("lib/m.flow"))
    gone = run(path, cache)
    check("an imported file removed: a compile error, not the cached code", gone.returncode == 2 and
          "cannot import" in gone.stderr, f"exit {gone.returncode}: {gone.stdout}{gone.stderr}")


@case
def changed_source_is_never_served_stale():
    cache = tmp("cache")
    path = program("p.flow", "print(1)\n")
    outputs = []
    for text in ["print(1)\n", "print(2)\n", "print(1)\n", "print(3) \n"]:
        program("p.flow", text)
        outputs.append(run(path, cache).stdout)
    check("each edit runs the source as it is now", outputs == ["1\n", "2\n", "1\n", "3\n"], str(outputs))
    check("one entry per distinct source", len(entries(cache)) == 3, str(list(entries(cache))))
    # The same text at another path is another module: its stack traces cite its own path.
    failing = "fn f() {\n  throw error(\"boom\", \"x\")\n}\nf()\n"
    a, b = program("a.flow", failing), program("b.flow", failing)
    ra, rb = run(a, cache), run(b, cache)
    check("the same source at two paths: two entries", len(entries(cache)) == 5, str(list(entries(cache))))
    check("each run's error cites its own file",
          ra.returncode != 0 and "a.flow" in ra.stderr and "b.flow" in rb.stderr and "a.flow" not in rb.stderr,
          f"{ra.stderr!r} {rb.stderr!r}")


@case
def damaged_entry_is_ignored_and_rewritten():
    cache = tmp("cache")
    path = program("p.flow", "let xs = [1, 2, 3]\nprint(len(xs))\n")
    first = run(path, cache)
    ((name, good),) = entries(cache).items()
    entry = os.path.join(cache, name)
    flipped = bytearray(good)
    flipped[-1] ^= 0x55
    damages = {"empty": b"", "cut inside the magic": good[:5], "cut inside the payload": good[:-3],
               "a flipped byte": bytes(flipped), "not bytecode": b"print(666)\n", "a newer version": good[:8] + b"\x63" + good[9:]}
    for what, data in damages.items():
        with open(entry, "wb") as f:
            f.write(data)
        r = run(path, cache)
        check(f"{what}: the program runs as compiled, silently",
              r.returncode == 0 and r.stdout == first.stdout and r.stderr == "", f"exit {r.returncode}: {r.stdout}{r.stderr}")
        check(f"{what}: the entry is written again", entries(cache) == {name: good}, str(entries(cache).keys()))
    os.remove(entry)
    os.mkdir(entry)  # not a file at all: the entry cannot be read nor replaced
    r = run(path, cache)
    check("a folder in the entry's place: the program still runs",
          r.returncode == 0 and r.stdout == first.stdout and r.stderr == "", f"exit {r.returncode}: {r.stdout}{r.stderr}")


@case
def concurrent_runs_share_the_cache():
    cache = tmp("cache")
    path = program("p.flow", "let s = 0\nfor i in range(1000) { s = s + i }\nprint(s)\n")
    env = dict(os.environ, FLOW_CACHE_DIR=cache)
    procs = [subprocess.Popen([FLOW, "run", "--ephemeral", path], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    results = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
    check("8 runs started at once on an empty cache all print the right sum",
          all(r == ("499500\n", "", 0) for r in results), str(results))
    check("one entry and no temporary file left", os.listdir(cache) == list(entries(cache)) and len(entries(cache)) == 1,
          str(os.listdir(cache)))


@case
def compile_errors_are_reported_every_time():
    cache = tmp("cache")
    path = program("bad.flow", "print(\n")
    results = [run(path, cache) for _ in range(2)]
    check("both runs report the compile error (exit 2)",
          all(r.returncode == 2 and "bad.flow" in r.stderr for r in results), str([(r.returncode, r.stderr) for r in results]))
    check("nothing is cached", entries(cache) == {}, str(list(entries(cache))))
    program("bad.flow", "print(1)\n")
    fixed = run(path, cache)
    check("once fixed, it runs and is cached", fixed.stdout == "1\n" and len(entries(cache)) == 1,
          f"{fixed.stdout}{fixed.stderr} {list(entries(cache))}")


@case
def off_when_empty_or_no_cache():
    path = program("p.flow", "print(7)\n")
    home, xdg = tmp("home"), tmp("xdg")
    r = flow("run", "--ephemeral", path, env=env_with(FLOW_CACHE_DIR="", XDG_CACHE_HOME=xdg, HOME=home))
    check("FLOW_CACHE_DIR= runs the program", r.returncode == 0 and r.stdout == "7\n", r.stderr)
    check("FLOW_CACHE_DIR= writes nowhere", all_files(home) + all_files(xdg) == [], str(all_files(home) + all_files(xdg)))
    cache = tmp("cache")
    r = flow("run", "--ephemeral", "--no-cache", path, env=env_with(FLOW_CACHE_DIR=cache))
    check("--no-cache runs the program and writes nothing",
          r.returncode == 0 and r.stdout == "7\n" and not os.path.exists(cache), r.stderr)
    help_text = flow("run", "--help").stdout
    check("flow run --help names --no-cache and FLOW_CACHE_DIR", "--no-cache" in help_text and "FLOW_CACHE_DIR" in help_text,
          help_text)


@case
def default_locations():
    path = program("p.flow", "print(8)\n")
    xdg, home = tmp("xdg"), tmp("home")
    flow("run", "--ephemeral", path, env=env_with(XDG_CACHE_HOME=xdg, HOME=home))
    check("XDG_CACHE_HOME/flow when FLOW_CACHE_DIR is unset", len(entries(os.path.join(xdg, "flow"))) == 1,
          str(all_files(xdg)))
    home2 = tmp("home2")
    flow("run", "--ephemeral", path, env=env_with(HOME=home2))
    check("else HOME/.cache/flow", len(entries(os.path.join(home2, ".cache", "flow"))) == 1, str(all_files(home2)))


@case
def unwritable_cache_is_no_cache():
    path = program("p.flow", "print(9)\n")
    blocker = program("a-file", "not a folder\n")
    places = {"under a file": os.path.join(blocker, "cache"), "a file itself": blocker}
    if os.geteuid() != 0:  # root writes anywhere
        read_only = tmp("read-only")
        os.mkdir(read_only, 0o500)
        places["a read-only folder"] = read_only
    for what, cache in places.items():
        for attempt in range(2):
            r = run(path, cache)
            check(f"{what}, run {attempt + 1}: the program runs, silently",
                  r.returncode == 0 and r.stdout == "9\n" and r.stderr == "", f"exit {r.returncode}: {r.stdout}{r.stderr}")
    os.remove(blocker)  # the place can be made now: the next run caches there
    r = run(path, os.path.join(blocker, "cache"))
    check("once the folder can be made, the run caches there",
          r.stdout == "9\n" and len(entries(os.path.join(blocker, "cache"))) == 1, f"{r.stdout}{r.stderr}")


@case
def eviction_keeps_the_bounds():
    cache = tmp("cache")
    os.mkdir(cache)
    old = [os.path.join(cache, f"{i:032x}.flowc") for i in range(MAX_ENTRIES + 8)]
    for i, p in enumerate(old):
        with open(p, "wb") as f:
            f.write(b"x")
        os.utime(p, (1_000_000 + i, 1_000_000 + i))
    other = os.path.join(cache, "notes.txt")  # not an entry: left alone
    program(other, "mine\n")
    stale, fresh = (os.path.join(cache, f"{0xdead + i:032x}.flowc.tmp.99999") for i in range(2))
    program(stale, "left by a writer that died\n")
    program(fresh, "being written\n")
    os.utime(stale, (1_000_000, 1_000_000))
    path = program("p.flow", "print(10)\n")
    r = run(path, cache)
    kept = entries(cache)
    check("the run succeeds", r.returncode == 0 and r.stdout == "10\n", r.stderr)
    check(f"at most {MAX_ENTRIES} entries after a write", len(kept) == MAX_ENTRIES, str(len(kept)))
    check("the oldest went, the newest and the new entry stayed",
          not any(os.path.exists(p) for p in old[:9]) and all(os.path.exists(p) for p in old[9:])
          and any(n not in {os.path.basename(p) for p in old} for n in kept), "")
    check("other files are left alone", os.path.exists(other))
    check("a temporary file left long ago is removed, a fresh one kept",
          not os.path.exists(stale) and os.path.exists(fresh))
    # The byte bound: two big (sparse) entries and a new one are more than MAX_BYTES.
    for n in entries(cache):
        os.remove(os.path.join(cache, n))
    big = [os.path.join(cache, f"{0xb16 + i:032x}.flowc") for i in range(2)]
    for i, p in enumerate(big):
        with open(p, "wb") as f:
            f.truncate(40 << 20)
        os.utime(p, (2_000_000 + i, 2_000_000 + i))
    run(program("q.flow", "print(11)\n"), cache)
    sizes = [os.path.getsize(os.path.join(cache, n)) for n in entries(cache)]
    check(f"at most {MAX_BYTES} bytes after a write, the older big entry evicted",
          sum(sizes) <= MAX_BYTES and not os.path.exists(big[0]) and os.path.exists(big[1]), str(sizes))


if __name__ == "__main__":
    main()
