#!/usr/bin/env python3
"""End-to-end tests of the `flow` command line: compile, run bytecode, damaged bytecode,
check, disasm, --help, --version, --arg, exit codes and stdout/stderr separation; and that
it tells the truth: option values checked (durations with a unit, budgets, run ids), a new
store's parents created, `flow signal` saying queued or delivered and refusing values the
run could not read, -o refusing devices, links and its input, output that cannot be
written reported (exit 74) and never recorded as done, control characters escaped."""
import json, os, signal, stat, subprocess, sys, tempfile, time

FLOW = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import check, finish  # noqa: E402


def run(*args, cwd=None, stdin=None):
    p = subprocess.run([FLOW, *args], capture_output=True, text=True, timeout=60, cwd=cwd, input=stdin)
    return p.returncode, p.stdout, p.stderr


def run_to_full(*args):
    """Runs flow with its stdout on /dev/full (every write fails with ENOSPC)."""
    with open("/dev/full", "w") as full:
        p = subprocess.run([FLOW, *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    return p.returncode, p.stderr


PROGRAM = """fn greet(who) { return "hello, ${who}" }
let n = 0
for i in range(5) { n = n + i }
print(greet(args.who), n, [1.5, {a: null}])
"""

with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(tmp, "hello.flow")
    with open(src, "w") as f:
        f.write(PROGRAM)

    code, out, err = run("--version")
    check("version", code == 0 and out.startswith("flow "), out + err)
    code, out, err = run("--help")
    check("help", code == 0 and "run" in out and "compile" in out and "disasm" in out, out)
    for sub in ["run", "compile", "check", "disasm"]:
        code, out, err = run(sub, "--help")
        check(f"{sub} --help", code == 0 and "FILE" in out, out + err)
    code, out, err = run("run", "--help")
    check("run --help lists the store options", "--store" in out and "--run-id" in out and "--arg" in out, out)
    code, out, err = run()
    check("no command is a usage error", code == 2, f"exit {code}")
    code, out, err = run("frobnicate")
    check("unknown command is a usage error", code == 2, f"exit {code}")
    code, out, err = run("run", src, "--durability", "sometimes")
    check("bad option value is a usage error", code == 2, f"exit {code} {err}")
    code, out, err = run("run", os.path.join(tmp, "missing.flow"))
    check("missing file", code == 2 and "cannot read" in err, f"exit {code} {err}")

    code, out, err = run("run", src, "--arg", "who=world", "--store", os.path.join(tmp, "s"))
    expected = 'hello, world 10 [1.5,{"a":null}]\n'
    check("run source with --arg", code == 0 and out == expected, f"exit {code} out={out!r} err={err!r}")
    code, out, err = run("run", src, "--arg", "novalue")
    check("--arg without = is a usage error", code == 2 and "NAME=VALUE" in err, f"exit {code} {err}")

    bc = os.path.join(tmp, "out.flowc")
    code, out, err = run("compile", src, "-o", bc)
    check("compile -o", code == 0 and os.path.exists(bc), f"exit {code} {err}")
    code, out, err = run("compile", src)
    check("compile default output name", code == 0 and os.path.exists(os.path.join(tmp, "hello.flowc")), err)
    moved = os.path.join(tmp, "moved")
    os.rename(src, moved)  # the bytecode must run without its source
    code, out, err = run("run", bc, "--arg", "who=world")
    check("run bytecode without the source", code == 0 and out == expected, f"exit {code} out={out!r} err={err!r}")
    os.rename(moved, src)

    data = open(bc, "rb").read()
    bad_cases = {
        "truncated to the header": data[:20],
        "truncated by one byte": data[:-1],
        "truncated to half": data[: len(data) // 2],
        "flipped payload byte": data[:40] + bytes([data[40] ^ 0xFF]) + data[41:],
        "flipped checksum byte": data[:25] + bytes([data[25] ^ 0x01]) + data[26:],
        "trailing garbage": data + b"xyz",
        "magic only": data[:8],
    }
    for label, content in bad_cases.items():
        path = os.path.join(tmp, "bad.flowc")
        with open(path, "wb") as f:
            f.write(content)
        code, out, err = run("run", path)
        lines = [l for l in err.splitlines() if l.strip()]
        check(f"damaged bytecode ({label}) exits 3 with one message",
              code == 3 and len(lines) == 1 and out == "", f"exit {code} err={err!r}")

    code, out, err = run("check", src)
    check("check of a good file is silent", code == 0 and out == "" and err == "", f"exit {code} {out}{err}")
    bad = os.path.join(tmp, "bad.flow")
    with open(bad, "w") as f:
        f.write('print("runs?")\nlet x = \nprint(y)\n')
    code, out, err = run("check", bad)
    check("check reports errors with exit 2", code == 2 and "bad.flow:3:7: error: undefined name `y`" in err and "^" in err, f"exit {code} {err}")
    code, out, err = run("run", bad)
    check("compile error: nothing runs", code == 2 and out == "", f"exit {code} out={out!r}")

    code, out, err = run("disasm", src)
    check("disasm names opcodes and operands",
          code == 0 and "CALL_BUILTIN" in out and "; print" in out and "function #1 greet" in out, out[:400])
    code, out2, err = run("disasm", bc)
    check("disasm of bytecode equals disasm of source", code == 0 and out2.replace(bc, src) == out.replace(bc, src), "")

    # ---- option values ----
    quick = os.path.join(tmp, "quick.flow")
    with open(quick, "w") as f:
        f.write('print("ran")\n')
    code, out, err = run("run", quick, "--ephemeral", "--deadline", "5")
    check("a duration without a unit is refused with a hint",
          code == 2 and "did you mean 5s?" in err and out == "", f"exit {code} out={out!r} err={err!r}")
    code, out, err = run("resume", "somerun", "--store", os.path.join(tmp, "s"), "--deadline", "30")
    check("resume --deadline without a unit is refused", code == 2 and "did you mean 30s?" in err, f"exit {code} {err}")
    for d in ["5s", "250ms", "2m", "1h", "1d"]:
        code, out, err = run("run", quick, "--ephemeral", "--deadline", d)
        check(f"--deadline {d} works", code == 0 and out == "ran\n", f"exit {code} {err}")
    for d in ["5x", "s", "99999999999999999999d"]:
        code, out, err = run("run", quick, "--ephemeral", "--deadline", d)
        check(f"--deadline {d} is refused", code == 2 and out == "", f"exit {code} {err}")
    for opt in ["--max-effects", "--max-instructions", "--max-tokens"]:
        for bad in ["-1", "-100", "18446744073709551617", "9223372036854775808", "0", "1e3", "12abc"]:
            code, out, err = run("run", quick, "--ephemeral", opt, bad)
            check(f"{opt} {bad} is a usage error", code == 2 and out == "" and "whole number" in err,
                  f"exit {code} out={out!r} err={err!r}")
        code, out, err = run("run", quick, "--ephemeral", opt, "9223372036854775807")
        check(f"{opt} 2^63-1 is accepted", code == 0 and out == "ran\n", f"exit {code} {err}")
    store = os.path.join(tmp, "store")
    code, out, err = run("run", quick, "--store", store, "--run-id", "-x")
    check("a run id starting with - is refused", code == 2 and "not a valid run id" in err and out == "",
          f"exit {code} out={out!r} err={err!r}")
    code, out, err = run("inspect", "--store", store, "--", "-x")
    check("a RUN starting with - is refused", code == 2 and "not a valid run id" in err, f"exit {code} {err}")

    # ---- a store in a new place ----
    deep_store = os.path.join(tmp, "new", "parents", "store")
    code, out, err = run("run", quick, "--store", deep_store, "--run-id", "r1")
    check("--store whose parents are missing is created", code == 0 and out == "ran\n" and
          os.path.isdir(os.path.join(deep_store, "runs", "r1")), f"exit {code} {err}")
    code, out, err = run("worker", "--once", "--store", os.path.join(tmp, "new2", "store"))
    check("worker --store whose parents are missing", code == 0, f"exit {code} {err}")
    code, out, err = run("run", quick, "--store", os.path.join(src, "store"))
    check("--store under a file is a usage error, not a damaged store",
          code == 2 and "cannot create the store folder" in err and src + "/store" in err, f"exit {code} {err}")

    # ---- flow signal tells the truth ----
    waiter = os.path.join(tmp, "waiter.flow")
    with open(waiter, "w") as f:
        f.write('let v = signal.wait("go")\nprint("got", v)\n')
    code, out, err = run("run", waiter, "--store", store, "--run-id", "w1")
    check("a waiting run suspends", code == 75, f"exit {code} {err}")
    code, out, err = run("signal", "w1", "other", '"x"', "--store", store)
    check("a signal the run does not wait for is queued, and says what the run waits for",
          code == 0 and "queued" in err and "waits for signal go" in err and "delivered" not in err, f"exit {code} {err}")
    timer = os.path.join(tmp, "timer.flow")
    with open(timer, "w") as f:
        f.write('sleep(1h)\nprint("woke")\n')
    code, out, err = run("run", timer, "--store", store, "--run-id", "t1")
    code, out, err = run("signal", "t1", "go", "--store", store)
    check("a signal to a run on a timer is queued", code == 0 and "queued" in err and "timer" in err and
          "delivered" not in err, f"exit {code} {err}")
    code, out, err = run("signal", "r1", "go", "--store", deep_store)
    check("a signal to a finished run is refused", code == 2 and "completed" in err, f"exit {code} {err}")
    deep = "[" * 601 + "]" * 601
    code, out, err = run("signal", "w1", "go", deep, "--store", store)
    check("a value nested deeper than signal.wait reads is refused", code == 2 and "512" in err, f"exit {code} {err}")
    deep_file = os.path.join(tmp, "deep.json")
    with open(deep_file, "w") as f:
        f.write(deep)
    code, out, err = run("signal", "w1", "go", "@" + deep_file, "--store", store)
    check("the same from @FILE is refused", code == 2 and "512" in err, f"exit {code} {err}")
    code, out, err = run("signal", "w1", "go", "@" + os.path.join(tmp, "none.json"), "--store", store)
    check("@FILE that does not exist is a usage error", code == 2 and "none.json" in err, f"exit {code} {err}")
    code, out, err = run("signal", "w1", "go", "@/dev/zero", "--store", store)
    check("an endless @FILE is read only up to the cap, then refused", code == 2 and "larger than" in err,
          f"exit {code} {err}")
    big = json.dumps({"blob": "x" * 300_000, "n": 7})  # more than one argv string may hold
    code, out, err = run("signal", "w1", "go", "-", "--store", store, stdin=big)
    check("a large value from stdin is delivered to the run waiting for it",
          code == 0 and "delivered" in err and "queued" not in err, f"exit {code} {err}")
    code, out, err = run("resume", "w1", "--store", store)
    check("the run receives the value read from stdin (the refused ones never reached it)",
          code == 0 and out.startswith('got {"blob":"xxx') and out.endswith('"n":7}\n'), f"exit {code} {err} {out[:80]}")

    # ---- -o never replaces what is not a regular file, nor the input ----
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    code, out, err = run("compile", src, "-o", fifo)
    check("compile -o onto a pipe is refused", code == 2 and stat.S_ISFIFO(os.lstat(fifo).st_mode), f"exit {code} {err}")
    link = os.path.join(tmp, "link.flowc")
    os.symlink(os.path.join(tmp, "target.flowc"), link)
    code, out, err = run("compile", src, "-o", link)
    check("compile -o onto a symbolic link is refused", code == 2 and os.path.islink(link), f"exit {code} {err}")
    code, out, err = run("compile", src, "-o", src)
    check("compile -o onto its source is refused, the source kept",
          code == 2 and open(src).read() == PROGRAM, f"exit {code} {err}")
    code, out, err = run("compile", bc)
    check("compile of a .flowc onto itself is refused", code == 2 and "input" in err, f"exit {code} {err}")
    code, out, err = run("export", "r1", "--store", deep_store, "-o", link)
    check("export -o onto a symbolic link is refused", code == 2 and os.path.islink(link), f"exit {code} {err}")
    code, out, err = run("export", "r1", "--store", deep_store, "-o", os.path.join(tmp, "r1.fvm"))
    check("export -o onto a new file works", code == 0 and os.path.getsize(os.path.join(tmp, "r1.fvm")) > 0, err)
    code, out, err = run("import", os.path.join(tmp, "r1.fvm"), "--store", os.path.join(tmp, "new3", "store"))
    check("import into a store whose parents are missing", code == 0 and out == "r1\n", f"exit {code} {err}")
    if os.geteuid() == 0:  # mknod needs root; the node is a copy of /dev/null's numbers
        node = os.path.join(tmp, "fakenull")
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        code, out, err = run("compile", src, "-o", node)
        check("compile -o onto a device node is refused, the node kept",
              code == 2 and stat.S_ISCHR(os.lstat(node).st_mode), f"exit {code} {err}")

    # ---- output that cannot be written ----
    code, err = run_to_full("run", quick, "--store", store, "--run-id", "full1")
    check("a durable run whose print cannot be written exits 74", code == 74 and "cannot write" in err, f"exit {code} {err}")
    code, out, err = run("history", "full1", "--json", "--store", store)
    check("the print that was not written is not recorded as done",
          code == 0 and not any(e["effect"] == "print" for e in json.loads(out)), f"exit {code} {out}")
    code, out, err = run("resume", "full1", "--store", store)
    check("resuming it prints the line", code == 0 and out == "ran\n", f"exit {code} {out!r} {err}")
    code, err = run_to_full("run", quick, "--ephemeral")
    check("an ephemeral run to a full stdout exits 74", code == 74 and "cannot write" in err, f"exit {code} {err}")
    for args in [("history", "full1", "--store", store), ("trace", "full1", "--store", store), ("disasm", src),
                 ("runs", "--store", store), ("inspect", "full1", "--store", store),
                 ("export", "r1", "--store", deep_store)]:
        code, err = run_to_full(*args)
        check(f"{args[0]} to a full stdout exits 74", code == 74 and "cannot write" in err, f"exit {code} {err}")

    # An ephemeral run killed mid-way keeps what it printed.
    spin = os.path.join(tmp, "spin.flow")
    marker = os.path.join(tmp, "marker")
    with open(spin, "w") as f:
        f.write(f'print("before")\nfs.write({json.dumps(marker)}, "x")\nwhile true {{ }}\n')
    for sig in [signal.SIGTERM, signal.SIGKILL]:
        if os.path.exists(marker):
            os.remove(marker)
        out_path = os.path.join(tmp, "spin.out")
        with open(out_path, "w") as out_file:
            p = subprocess.Popen([FLOW, "run", spin, "--ephemeral"], stdout=out_file)
            while not os.path.exists(marker) and p.poll() is None:
                time.sleep(0.02)  # waits for the run to pass its print; asserts nothing on time
            p.send_signal(sig)
            p.wait()
        check(f"an ephemeral run ended by {sig.name} keeps its output", open(out_path).read() == "before\n",
              repr(open(out_path).read()))

    # ---- the crash-test hook: there only when the build says so ----
    code, version, err = run("--version")
    hooks = "test hooks: FLOW_CRASH_AT honoured" in version
    p = subprocess.run([FLOW, "run", quick, "--store", store, "--run-id", "hook"], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "FLOW_CRASH_AT": "1:after-checkpoint"})
    check("FLOW_CRASH_AT kills the run exactly when --version says the hook is built in",
          (p.returncode == -signal.SIGKILL) == hooks, f"version {version!r} exit {p.returncode}")

    # ---- names that reach the terminal ----
    odd_dir = os.path.join(tmp, "odd")
    os.mkdir(odd_dir)
    odd = os.path.join(odd_dir, "\x1b[31mRED\x1b[0m\nx.flow")
    with open(odd, "w") as f:
        f.write('print("odd")\n')
    code, out, err = run("run", odd, "--store", store, "--run-id", "odd")
    code, out, err = run("runs", "--store", store)
    check("control characters in flow runs are escaped",
          code == 0 and "\x1b" not in out and "\\x1b[31mRED" in out and
          len(out.splitlines()) == 1 + len(os.listdir(os.path.join(store, "runs"))), repr(out))

    # ---- paths: as typed, or absolute ----
    elsewhere = os.path.join(tmp, "elsewhere")
    os.mkdir(elsewhere)
    with open(os.path.join(tmp, "rel.flow"), "w") as f:
        f.write('sleep(1h)\nthrow error("late", "after the wait")\n')
    code, out, err = run("run", "rel.flow", "--store", store, "--run-id", "rel", cwd=tmp)
    runs = {r["id"]: r for r in json.loads(run("runs", "--json", "--store", store)[1])}
    check("a run started with a relative path records it absolute",
          runs["rel"]["program"] == os.path.join(tmp, "rel.flow"), runs["rel"]["program"])
    code, out, err = run("inspect", "rel", "--store", store, cwd=elsewhere)
    check("inspect from another folder names the program absolutely", os.path.join(tmp, "rel.flow") + ":1" in out, out)

    failing = os.path.join(tmp, "fail.flow")
    with open(failing, "w") as f:
        f.write('print("partial")\nfn f() { throw error("quota", "over the limit") }\nf()\n')
    code, out, err = run("run", failing)
    check("uncaught error: exit 1, output kept on stdout, error on stderr",
          code == 1 and out == "partial\n" and "quota: over the limit" in err and "fail.flow:2" in err,
          f"exit {code} out={out!r} err={err!r}")

finish()
