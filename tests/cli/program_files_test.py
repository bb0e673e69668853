#!/usr/bin/env python3
"""The program file a command names, as hostile input: empty or cut bytecode, a directory,
an endless device, a huge line, an unclosed comment, expressions too deep to compile,
bytecode whose handlers do not balance. Each is one clear message and an exit code (2 for
usage and compile errors, 3 for damaged bytecode), never a crash or unbounded output."""
import ctypes, functools, os, re, resource, struct, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, ROOT, add_case, case, check, main, program, tmp  # noqa: E402


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a regression fails, not the machine


@functools.cache
def memory_limit():
    """limit_memory, unless this build cannot start under it: a sanitizer build reserves
    terabytes of shadow memory, so it runs without one (ASan caps its own allocations)."""
    return limit_memory if subprocess.run([FLOW, "--version"], capture_output=True,
                                          preexec_fn=limit_memory).returncode == 0 else None


def run(*args, cwd=None):
    p = subprocess.run([FLOW, *args], capture_output=True, timeout=120, cwd=cwd, preexec_fn=memory_limit())
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def opcode(name):
    """The number of an opcode: its position in opcodes.def."""
    names = re.findall(r"^OP\((\w+),", open(os.path.join(ROOT, "vm", "bytecode", "opcodes.def")).read(), re.M)
    return names.index(name)


def reseal(bytecode, old, new):
    """Replaces the last opcode byte `old` of the payload by `new` and seals the file again
    with a valid checksum, as the adversarial pass did (layout: docs/bytecode.md)."""
    xxh = ctypes.CDLL("libxxhash.so.0")
    xxh.XXH3_64bits.restype = ctypes.c_uint64
    xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    version = struct.unpack("<I", bytecode[8:12])[0]
    payload = bytearray(bytecode[28:])
    at = payload.rfind(bytes([old]))
    payload[at] = new
    return bytecode[:8] + struct.pack("<IQQ", version, len(payload), xxh.XXH3_64bits(bytes(payload), len(payload))) + bytes(payload)




@case
def truncated_bytecode():
    """Row 35: a .flowc shorter than the magic is damaged bytecode, not an empty program."""
    for name, data in [("empty.flowc", b""), ("cut.flowc", b"\x7fFL"), ("cut.flow", b"\x7fFLOW")]:
        code, out, err = run("run", program(name, data), "--ephemeral")
        check(f"{name} ({len(data)} bytes) is truncated bytecode", code == 3 and "truncated bytecode" in err,
              f"exit {code}: {err}")
    code, out, err = run("run", program("text.flowc", "print(1)\n"), "--ephemeral")
    check("a .flowc holding source is not bytecode", code == 3 and out == "" and "not a Flow bytecode file" in err,
          f"exit {code}: {out}{err}")


@case
def directory():
    """Row 36: a directory."""
    for command in ["run", "check", "compile", "disasm"]:
        code, out, err = run(command, ".", cwd=tmp())
        check(f"{command} of a directory", code == 2 and "is a directory" in err, f"exit {code}: {err}")


@case
def endless_device():
    """Row 10: an endless device is read only up to the cap."""
    code, out, err = run("check", "/dev/zero")
    check("a source file larger than 16 MiB is refused", code == 2 and "is larger than 16777216 bytes" in err,
          f"exit {code}: {err}")


@case
def shebang_and_comment():
    code, out, err = run("run", program("ok.flow", "#!/usr/bin/env -S flow run\nprint(1) // done\n"), "--ephemeral")
    check("a #! line and a trailing comment", code == 0 and out == "1\n", f"exit {code}: {out}{err}")


@case
def huge_unterminated_string():
    """Row 37: a 10 MB unterminated string is quoted around the error only."""
    code, out, err = run("check", program("u1.flow", 'let x = "' + "a" * 10_000_000 + "\n"))
    check("a 10 MB unterminated string gives a short message",
          code == 2 and "unterminated string" in err and len(err) < 1000, f"exit {code}, {len(err)} bytes")


@case
def unterminated_comment():
    """Row 38: an unterminated block comment is named, where it starts."""
    code, out, err = run("check", program("u3.flow", "print(1)\n/* never closed\nprint(2)\n"))
    check("unterminated comment", code == 2 and "u3.flow:2:1: error: unterminated comment" in err, f"exit {code}: {err}")


# Rows 1-3: flat chains of 20,000 terms are a compile error, not a crash.
CHAINS = {
    "plus": "let x = 1" + " + 1" * 20000,
    "and": "let x = true" + " && true" * 20000,
    "strings": 'let x = "a"' + ' + "a"' * 20000,
    "fields": "let m = {}\nprint(m" + ".a" * 20000 + ")",
    "indexes": "let m = [0]\nprint(m" + "[0]" * 20000 + ")",
    "calls": "fn f() { return f }\nf" + "()" * 20000,
    "methods": 'print(" a "' + ".trim()" * 20000 + ")",
    # Nested without brackets: the parser itself recurses once per keyword.
    "retries": "let x = " + "retry " * 50000 + "1 " + "{ } " * 50000,
    "timeouts": "let x = " + "timeout " * 50000 + "1s " + "{ } " * 50000,
    "steps": "let x = " + "step " * 50000 + '"k" ' + "{ } " * 50000,
    "breakers": "let x = " + "breaker " * 50000 + '"b" ' + "{ } " * 50000,
}


def chain(name):
    path = program(f"chain_{name}.flow", CHAINS[name] + "\n")
    for command in ["check", "run"]:
        code, out, err = run(command, path, *(["--ephemeral"] if command == "run" else []))
        check(f"{command}: a chain of {name}", code == 2 and "expression nesting too deep" in err,
              f"exit {code}: {err[:300]}")


for name in CHAINS:
    add_case(f"chain_{name}", chain, name)


@case
def stray_handler_ends():
    """Row 4: a stray *_END sealed with a valid checksum is refused by the verifier."""
    src = program("eq.flow", "let a = 1\nlet b = 2\nprint(a == b)\n")
    compiled = tmp("eq.flowc")
    code, out, err = run("compile", src, "-o", compiled)
    check("compile eq.flow", code == 0, err)
    original = open(compiled, "rb").read()
    for end in ["STEP_END", "RETRY_END", "TIMEOUT_END", "BREAKER_END", "POP_HANDLER"]:
        mutant = program(f"eq_{end}.flowc", reseal(original, opcode("EQ"), opcode(end)))
        code, out, err = run("run", mutant, "--ephemeral")
        check(f"EQ turned into {end} is refused", code == 3 and "invalid bytecode" in err and out == "",
              f"exit {code}: {out}{err}")


@case
def unclosed_retry():
    src = program("retry.flow", "print(retry 2 { 1 })\n")
    compiled = tmp("retry.flowc")
    run("compile", src, "-o", compiled)
    mutant = program("retry_begin.flowc", reseal(open(compiled, "rb").read(), opcode("RETRY_BEGIN"), opcode("PUSH_TRUE")))
    code, out, err = run("run", mutant, "--ephemeral")
    check("RETRY_BEGIN turned into PUSH_TRUE is refused", code == 3 and "RETRY_END does not close" in err,
          f"exit {code}: {out}{err}")


main()
