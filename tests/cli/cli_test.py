#!/usr/bin/env python3
"""End-to-end tests of the `flow` command line: compile, run bytecode, damaged bytecode,
check, disasm, --help, --version, --arg, exit codes and stdout/stderr separation; and that
it tells the truth: option values checked (durations with a unit, budgets, run ids), a new
store's parents created, `flow signal` saying queued or delivered and refusing values the
run could not read, -o refusing devices, links and its input, output that cannot be
written reported (exit 74) and never recorded as done, control characters escaped."""
import json, os, signal, stat, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, folder_store_case, check, flow, main, program, store, tmp  # noqa: E402


def run(*args, cwd=None, stdin=None):
    p = flow(*args, cwd=cwd, input=stdin)
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
EXPECTED = 'hello, world 10 [1.5,{"a":null}]\n'


def source():
    return program("hello.flow", PROGRAM)


def compiled():
    """hello.flow compiled to out.flowc."""
    bc = tmp("out.flowc")
    run("compile", source(), "-o", bc)
    return bc


def quick():
    return program("quick.flow", 'print("ran")\n')


def deep_store():
    """A store whose parents did not exist, holding one completed run, r1."""
    deep = tmp("new", "parents", "store")
    if not os.path.isdir(deep):
        run("run", quick(), "--store", deep, "--run-id", "r1")
    return deep


@case
def version_and_help():
    code, out, err = run("--version")
    check("version", code == 0 and out.startswith("flow "), out + err)
    code, out, err = run("--help")
    check("help", code == 0 and "run" in out and "compile" in out and "disasm" in out, out)
    for sub in ["run", "compile", "check", "disasm"]:
        code, out, err = run(sub, "--help")
        check(f"{sub} --help", code == 0 and "FILE" in out, out + err)
    code, out, err = run("run", "--help")
    check("run --help lists the store options", "--store" in out and "--run-id" in out and "--arg" in out, out)


@case
def usage_errors():
    code, out, err = run()
    check("no command is a usage error", code == 2, f"exit {code}")
    code, out, err = run("frobnicate")
    check("unknown command is a usage error", code == 2, f"exit {code}")
    code, out, err = run("run", source(), "--durability", "sometimes")
    check("bad option value is a usage error", code == 2, f"exit {code} {err}")
    code, out, err = run("run", tmp("missing.flow"))
    check("missing file", code == 2 and "cannot read" in err, f"exit {code} {err}")


@case
def run_with_args():
    code, out, err = run("run", source(), "--arg", "who=world", "--store", tmp("s"))
    check("run source with --arg", code == 0 and out == EXPECTED, f"exit {code} out={out!r} err={err!r}")
    code, out, err = run("run", source(), "--arg", "novalue")
    check("--arg without = is a usage error", code == 2 and "NAME=VALUE" in err, f"exit {code} {err}")


@case
def compile_and_run_bytecode():
    src, bc = source(), tmp("out.flowc")
    code, out, err = run("compile", src, "-o", bc)
    check("compile -o", code == 0 and os.path.exists(bc), f"exit {code} {err}")
    code, out, err = run("compile", src)
    check("compile default output name", code == 0 and os.path.exists(tmp("hello.flowc")), err)
    os.remove(src)  # the bytecode must run without its source
    code, out, err = run("run", bc, "--arg", "who=world")
    check("run bytecode without the source", code == 0 and out == EXPECTED, f"exit {code} out={out!r} err={err!r}")


@case
def damaged_bytecode():
    data = open(compiled(), "rb").read()
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
        code, out, err = run("run", program("bad.flowc", content))
        lines = [l for l in err.splitlines() if l.strip()]
        check(f"damaged bytecode ({label}) exits 3 with one message",
              code == 3 and len(lines) == 1 and out == "", f"exit {code} err={err!r}")


@case
def check_command():
    code, out, err = run("check", source())
    check("check of a good file is silent", code == 0 and out == "" and err == "", f"exit {code} {out}{err}")
    bad = program("bad.flow", 'print("runs?")\nlet x = \nprint(y)\n')
    code, out, err = run("check", bad)
    check("check reports errors with exit 2", code == 2 and "bad.flow:3:7: error: undefined name `y`" in err and "^" in err,
          f"exit {code} {err}")
    code, out, err = run("run", bad)
    check("compile error: nothing runs", code == 2 and out == "", f"exit {code} out={out!r}")


@case
def disasm():
    src, bc = source(), compiled()
    code, out, err = run("disasm", src)
    check("disasm names opcodes and operands",
          code == 0 and "CALL_BUILTIN" in out and "; print" in out and "function #1 greet" in out, out[:400])
    code, out2, err = run("disasm", bc)
    check("disasm of bytecode equals disasm of source", code == 0 and out2.replace(bc, src) == out.replace(bc, src), "")


@case
def durations():
    code, out, err = run("run", quick(), "--ephemeral", "--deadline", "5")
    check("a duration without a unit is refused with a hint",
          code == 2 and "did you mean 5s?" in err and out == "", f"exit {code} out={out!r} err={err!r}")
    code, out, err = run("resume", "somerun", "--store", tmp("s"), "--deadline", "30")
    check("resume --deadline without a unit is refused", code == 2 and "did you mean 30s?" in err, f"exit {code} {err}")
    for d in ["5s", "250ms", "2m", "1h", "1d"]:
        code, out, err = run("run", quick(), "--ephemeral", "--deadline", d)
        check(f"--deadline {d} works", code == 0 and out == "ran\n", f"exit {code} {err}")
    for d in ["5x", "s", "99999999999999999999d", "0s", "0ms"]:  # 0 would silently mean no deadline
        code, out, err = run("run", quick(), "--ephemeral", "--deadline", d)
        check(f"--deadline {d} is refused", code == 2 and out == "", f"exit {code} {err}")


@case
def budgets():
    for opt in ["--max-effects", "--max-instructions", "--max-tokens"]:
        for bad in ["-1", "-100", "18446744073709551617", "9223372036854775808", "0", "1e3", "12abc"]:
            code, out, err = run("run", quick(), "--ephemeral", opt, bad)
            check(f"{opt} {bad} is a usage error", code == 2 and out == "" and "whole number" in err,
                  f"exit {code} out={out!r} err={err!r}")
        code, out, err = run("run", quick(), "--ephemeral", opt, "9223372036854775807")
        check(f"{opt} 2^63-1 is accepted", code == 0 and out == "ran\n", f"exit {code} {err}")


@case
def run_ids():
    code, out, err = run("run", quick(), "--store", store(), "--run-id", "-x")
    check("a run id starting with - is refused", code == 2 and "not a valid run id" in err and out == "",
          f"exit {code} out={out!r} err={err!r}")
    code, out, err = run("inspect", "--store", store(), "--", "-x")
    check("a RUN starting with - is refused", code == 2 and "not a valid run id" in err, f"exit {code} {err}")


@case
def new_store():
    """A store in a new place."""
    deep = tmp("new", "parents", "store")
    code, out, err = run("run", quick(), "--store", deep, "--run-id", "r1")
    check("--store whose parents are missing is created", code == 0 and out == "ran\n" and
          os.path.isdir(os.path.join(deep, "runs", "r1")), f"exit {code} {err}")
    code, out, err = run("worker", "--once", "--store", tmp("new2", "store"))
    check("worker --store whose parents are missing", code == 0, f"exit {code} {err}")
    src = source()
    code, out, err = run("run", quick(), "--store", os.path.join(src, "store"))
    check("--store under a file is a usage error, not a damaged store",
          code == 2 and "cannot create the store folder" in err and src + "/store" in err, f"exit {code} {err}")


@case
def signals():
    """flow signal tells the truth."""
    waiter = program("waiter.flow", 'let v = signal.wait("go")\nprint("got", v)\n')
    code, out, err = run("run", waiter, "--store", store(), "--run-id", "w1")
    check("a waiting run suspends", code == 75, f"exit {code} {err}")
    code, out, err = run("signal", "w1", "other", '"x"', "--store", store())
    check("a signal the run does not wait for is queued, and says what the run waits for",
          code == 0 and "queued" in err and "waits for signal go" in err and "delivered" not in err, f"exit {code} {err}")
    timer = program("timer.flow", 'sleep(1h)\nprint("woke")\n')
    run("run", timer, "--store", store(), "--run-id", "t1")
    code, out, err = run("signal", "t1", "go", "--store", store())
    check("a signal to a run on a timer is queued", code == 0 and "queued" in err and "timer" in err and
          "delivered" not in err, f"exit {code} {err}")
    code, out, err = run("signal", "r1", "go", "--store", deep_store())
    check("a signal to a finished run is refused", code == 2 and "completed" in err, f"exit {code} {err}")
    deep = "[" * 601 + "]" * 601
    code, out, err = run("signal", "w1", "go", deep, "--store", store())
    check("a value nested deeper than signal.wait reads is refused", code == 2 and "512" in err, f"exit {code} {err}")
    code, out, err = run("signal", "w1", "go", "@" + program("deep.json", deep), "--store", store())
    check("the same from @FILE is refused", code == 2 and "512" in err, f"exit {code} {err}")
    code, out, err = run("signal", "w1", "go", "@" + tmp("none.json"), "--store", store())
    check("@FILE that does not exist is a usage error", code == 2 and "none.json" in err, f"exit {code} {err}")
    code, out, err = run("signal", "w1", "go", "@/dev/zero", "--store", store())
    check("an endless @FILE is read only up to the cap, then refused", code == 2 and "larger than" in err,
          f"exit {code} {err}")
    big = json.dumps({"blob": "x" * 300_000, "n": 7})  # more than one argv string may hold
    code, out, err = run("signal", "w1", "go", "-", "--store", store(), stdin=big)
    check("a large value from stdin is delivered to the run waiting for it",
          code == 0 and "delivered" in err and "queued" not in err, f"exit {code} {err}")
    code, out, err = run("resume", "w1", "--store", store())
    check("the run receives the value read from stdin (the refused ones never reached it)",
          code == 0 and out.startswith('got {"blob":"xxx') and out.endswith('"n":7}\n'), f"exit {code} {err} {out[:80]}")


@case
def output_files():
    """-o never replaces what is not a regular file, nor the input."""
    src, bc = source(), compiled()
    fifo = tmp("fifo")
    os.mkfifo(fifo)
    code, out, err = run("compile", src, "-o", fifo)
    check("compile -o onto a pipe is refused", code == 2 and stat.S_ISFIFO(os.lstat(fifo).st_mode), f"exit {code} {err}")
    link = tmp("link.flowc")
    os.symlink(tmp("target.flowc"), link)
    code, out, err = run("compile", src, "-o", link)
    check("compile -o onto a symbolic link is refused", code == 2 and os.path.islink(link), f"exit {code} {err}")
    code, out, err = run("compile", src, "-o", src)
    check("compile -o onto its source is refused, the source kept",
          code == 2 and open(src).read() == PROGRAM, f"exit {code} {err}")
    code, out, err = run("compile", bc)
    check("compile of a .flowc onto itself is refused", code == 2 and "input" in err, f"exit {code} {err}")
    code, out, err = run("export", "r1", "--store", deep_store(), "-o", link)
    check("export -o onto a symbolic link is refused", code == 2 and os.path.islink(link), f"exit {code} {err}")
    code, out, err = run("export", "r1", "--store", deep_store(), "-o", tmp("r1.fvm"))
    check("export -o onto a new file works", code == 0 and os.path.getsize(tmp("r1.fvm")) > 0, err)
    code, out, err = run("import", tmp("r1.fvm"), "--store", tmp("new3", "store"))
    check("import into a store whose parents are missing", code == 0 and out == "r1\n", f"exit {code} {err}")
    if os.geteuid() == 0:  # mknod needs root; the node is a copy of /dev/null's numbers
        node = tmp("fakenull")
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        code, out, err = run("compile", src, "-o", node)
        check("compile -o onto a device node is refused, the node kept",
              code == 2 and stat.S_ISCHR(os.lstat(node).st_mode), f"exit {code} {err}")


@case
def full_stdout():
    """Output that cannot be written."""
    code, err = run_to_full("run", quick(), "--store", store(), "--run-id", "full1")
    check("a durable run whose print cannot be written exits 74", code == 74 and "cannot write" in err, f"exit {code} {err}")
    code, out, err = run("history", "full1", "--json", "--store", store())
    check("the print that was not written is not recorded as done",
          code == 0 and not any(e["effect"] == "print" for e in json.loads(out)), f"exit {code} {out}")
    code, out, err = run("resume", "full1", "--store", store())
    check("resuming it prints the line", code == 0 and out == "ran\n", f"exit {code} {out!r} {err}")
    code, err = run_to_full("run", quick(), "--ephemeral")
    check("an ephemeral run to a full stdout exits 74", code == 74 and "cannot write" in err, f"exit {code} {err}")
    for args in [("history", "full1", "--store", store()), ("trace", "full1", "--store", store()), ("disasm", source()),
                 ("runs", "--store", store()), ("inspect", "full1", "--store", store()),
                 ("export", "r1", "--store", deep_store()), ("--help",), ("--version",), ("run", "--help")]:
        code, err = run_to_full(*args)
        check(f"{args[0]} to a full stdout exits 74", code == 74 and "cannot write" in err, f"exit {code} {err}")


@case
def killed_ephemeral_run():
    """An ephemeral run killed mid-way keeps what it printed."""
    marker = tmp("marker")
    spin = program("spin.flow", f'print("before")\nfs.write({json.dumps(marker)}, "x")\nwhile true {{ }}\n')
    for sig in [signal.SIGTERM, signal.SIGKILL]:
        if os.path.exists(marker):
            os.remove(marker)
        out_path = tmp("spin.out")
        with open(out_path, "w") as out_file:
            p = subprocess.Popen([FLOW, "run", spin, "--ephemeral"], stdout=out_file)
            while not os.path.exists(marker) and p.poll() is None:
                time.sleep(0.02)  # waits for the run to pass its print; asserts nothing on time
            p.send_signal(sig)
            p.wait()
        check(f"an ephemeral run ended by {sig.name} keeps its output", open(out_path).read() == "before\n",
              repr(open(out_path).read()))


@case
def crash_hook():
    """The crash-test hook: there only when the build says so."""
    code, version, err = run("--version")
    hooks = "test hooks: FLOW_CRASH_AT honoured" in version
    p = flow("run", quick(), "--store", store(), "--run-id", "hook", crash="1:after-checkpoint")
    check("FLOW_CRASH_AT kills the run exactly when --version says the hook is built in",
          (p.returncode == -signal.SIGKILL) == hooks, f"version {version!r} exit {p.returncode}")


@folder_store_case
def control_characters():
    """Names that reach the terminal."""
    run("run", quick(), "--store", store(), "--run-id", "r0")
    os.mkdir(tmp("odd"))
    odd = program(os.path.join("odd", "\x1b[31mRED\x1b[0m\nx.flow"), 'print("odd")\n')
    run("run", odd, "--store", store(), "--run-id", "odd")
    code, out, err = run("runs", "--store", store())
    check("control characters in flow runs are escaped",
          code == 0 and "\x1b" not in out and "\\x1b[31mRED" in out and
          len(out.splitlines()) == 1 + len(os.listdir(os.path.join(store(), "runs"))), repr(out))


@case
def relative_paths():
    """Paths: as typed, or absolute."""
    elsewhere = tmp("elsewhere")
    os.mkdir(elsewhere)
    program("rel.flow", 'sleep(1h)\nthrow error("late", "after the wait")\n')
    run("run", "rel.flow", "--store", store(), "--run-id", "rel", cwd=tmp())
    runs = {r["id"]: r for r in json.loads(run("runs", "--json", "--store", store())[1])}
    check("a run started with a relative path records it absolute",
          runs["rel"]["program"] == tmp("rel.flow"), runs["rel"]["program"])
    code, out, err = run("inspect", "rel", "--store", store(), cwd=elsewhere)
    check("inspect from another folder names the program absolutely", tmp("rel.flow") + ":1" in out, out)


@case
def uncaught_error():
    failing = program("fail.flow", 'print("partial")\nfn f() { throw error("quota", "over the limit") }\nf()\n')
    code, out, err = run("run", failing)
    check("uncaught error: exit 1, output kept on stdout, error on stderr",
          code == 1 and out == "partial\n" and "quota: over the limit" in err and "fail.flow:2" in err,
          f"exit {code} out={out!r} err={err!r}")


main()
