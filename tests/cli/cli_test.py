#!/usr/bin/env python3
"""End-to-end tests of the `flow` command line: compile, run bytecode, damaged bytecode,
check, disasm, --help, --version, --arg, exit codes and stdout/stderr separation."""
import os, subprocess, sys, tempfile

FLOW = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import check, finish  # noqa: E402


def run(*args, cwd=None):
    p = subprocess.run([FLOW, *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


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

    failing = os.path.join(tmp, "fail.flow")
    with open(failing, "w") as f:
        f.write('print("partial")\nfn f() { throw error("quota", "over the limit") }\nf()\n')
    code, out, err = run("run", failing)
    check("uncaught error: exit 1, output kept on stdout, error on stderr",
          code == 1 and out == "partial\n" and "quota: over the limit" in err and "fail.flow:2" in err,
          f"exit {code} out={out!r} err={err!r}")

finish()
