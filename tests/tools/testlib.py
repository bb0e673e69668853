"""The harness of the Python tests: every script's checks are named cases.

    SCRIPT.py --list              the names of its cases, one a line
    SCRIPT.py FLOW [CASE...]      runs those cases (all without a name) against the binary FLOW

tests/CMakeLists.txt registers one CTest test per name (`flow_python_tests`), so
`ctest -R durable/idempotency_keys/step_retry` runs one. A case is a function marked
@case (or added with add_case); inside it check() records one assertion, and the case
passes when all of them do. Each case runs in a fresh temporary folder (tmp()) removed
after it; the local test servers of tests/tools (each prints `PORT n` first) are started
once per process by server() and killed at exit."""
import atexit, functools, json, os, shutil, subprocess, sys, tempfile, time, traceback

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)
ROOT = os.path.normpath(os.path.join(TOOLS, "..", ".."))
# The binary under test: the first argument, when it is not --list (read at import, so that
# scripts can `from testlib import FLOW`).
FLOW = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "--list" else None
failures = []
checks = 0
SKIPPED = 77  # the exit code when every case run was skipped (CTest's SKIP_RETURN_CODE)
_cases = {}
_skipped = set()
_case_tmp = None
_current = None
_root = None
_servers = []


def case(fn):
    """Marks fn as a case named by the function's name."""
    return add_case(fn.__name__, fn)


def folder_store_case(fn):
    """A case about the folder store's own files (its layout, sizes on disk, packed runs):
    not a case of the script's PostgreSQL suite (FLOW_TEST_STORE=postgres), which neither
    lists nor runs it."""
    return fn if os.environ.get("FLOW_TEST_STORE") == "postgres" else case(fn)


def add_case(name, fn, *args):
    """Adds a case that calls fn(*args): for cases made in a loop (one per program, per point)."""
    if name in _cases:
        raise ValueError(f"two cases named {name}")
    _cases[name] = functools.partial(fn, *args)
    return fn


def check(name, ok, detail=""):
    global checks
    checks += 1
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)
    return ok


def skip(reason):
    """Marks the running case skipped (it returns after calling this). A case that makes no
    check and does not skip fails: a test that cannot fail is a defect."""
    print(f"skip {_current}: {reason}")
    _skipped.add(_current)


def main():
    args = sys.argv[1:]
    if args == ["--list"]:
        print("\n".join(_cases))
        return
    if not args or args[0].startswith("-"):
        sys.exit(f"usage: {os.path.basename(sys.argv[0])} FLOW [CASE...] | --list")
    unknown = [a for a in args[1:] if a not in _cases]
    if unknown:
        sys.exit(f"no case named {', '.join(unknown)} (--list names them)")
    global _case_tmp, _current
    # flow run keeps compiled programs in a cache: the tests' own, not the user's.
    os.environ["FLOW_CACHE_DIR"] = os.path.join(_process_tmp(), ".cache")
    for name in args[1:] or list(_cases):
        _current = name
        _case_tmp = os.path.join(_process_tmp(), name)
        os.makedirs(_case_tmp)
        before, checks_before, started = len(failures), checks, time.monotonic()
        try:
            _cases[name]()
        except Exception:  # an assertion cut short by an error is a failure of the case
            check(f"{name} runs to its end", False, traceback.format_exc())
        if checks == checks_before and name not in _skipped:
            check(f"{name} checks something", False, "the case made no check")
        outcome = "SKIP" if name in _skipped else "PASS" if len(failures) == before else "FAIL"
        print(f"{outcome} case {name} ({time.monotonic() - started:.1f} s)\n")
        shutil.rmtree(_case_tmp, ignore_errors=True)
    print(f"{'all passed' if not failures else str(len(failures)) + ' failed'}")
    sys.exit(1 if failures else SKIPPED if _skipped >= set(args[1:] or _cases) else 0)


# ---- files ----

def _process_tmp():
    global _root
    if _root is None:
        _root = tempfile.mkdtemp(prefix="flowtest-")
        atexit.register(shutil.rmtree, _root, True)
    return _root


def fixture(fn):
    """Marks fn as set-up shared by the cases of one process: made at its first call, its
    result kept (files it writes go under shared())."""
    return functools.cache(fn)


def shared(*parts):
    """A folder kept for the whole process, for fixtures (a case's tmp() is removed after it)."""
    path = os.path.join(_process_tmp(), ".shared")
    os.makedirs(path, exist_ok=True)
    return os.path.join(path, *parts)


def tmp(*parts):
    """The running case's own temporary folder (or a path in it)."""
    return os.path.join(_case_tmp, *parts)


# FLOW_TEST_STORE=postgres: store() is a database of a PostgreSQL server that this process
# starts (tests/tools/pg_server.py), one database per case; the cases run against the
# PostgreSQL store instead of a folder (tests/CMakeLists.txt registers such suites as
# .../postgres/CASE).
ON_POSTGRES = os.environ.get("FLOW_TEST_STORE") == "postgres"
_pg_stores = {}


@functools.cache
def pg_server():
    """The PostgreSQL server of this process: the one a ctest run shares (FLOW_TEST_PG_SHARED
    names the file that says where: tests/CMakeLists.txt), or one started at the first call
    and stopped at exit."""
    import pg_server as pg  # noqa: E402 (tests/tools is on the path of every test script)
    shared = os.environ.get("FLOW_TEST_PG_SHARED")
    if shared and os.path.exists(shared):
        server = pg.PgServer.attach(shared)
        try:  # one an interrupted run left behind is gone
            import socket
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
            return server
        except OSError:
            pass
    return own_pg_server()


@functools.cache
def own_pg_server():
    """A PostgreSQL server of this process alone (one a case may restart), started at the
    first call, stopped at exit."""
    import pg_server as pg  # noqa: E402
    why = pg.available()
    if why:
        raise RuntimeError(why)  # never a silent skip: the suite was asked to run on PostgreSQL
    folder = tempfile.mkdtemp(prefix="flow-pg-")  # not under the case folders: the server's user must reach it
    atexit.register(shutil.rmtree, folder, True)
    server = pg.PgServer(folder).start()
    atexit.register(server.stop)  # registered last, so run first
    return server


def store():
    """The running case's store: a folder, or (FLOW_TEST_STORE=postgres) a database."""
    if not ON_POSTGRES:
        return tmp("store")
    if _current not in _pg_stores:
        _pg_stores[_current] = pg_server().database(f"case_{len(_pg_stores)}")
    return _pg_stores[_current]


def store_sql(statement):
    """Runs SQL in the running case's database (FLOW_TEST_STORE=postgres): its output."""
    return pg_server().sql(statement, store())


def program(name, text):
    """Writes TEXT to NAME in the case's folder (an absolute NAME is written as it is); returns its path."""
    path = tmp(name)
    with open(path, "wb" if isinstance(text, bytes) else "w") as f:
        f.write(text)
    return path


# ---- the flow command ----

def flow(*args, env=None, timeout=60, cwd=None, input=None, crash=None, **kwargs):
    """Runs `FLOW ARGS...`, text output captured; crash sets FLOW_CRASH_AT (K:POINT)."""
    if crash:
        env = dict(env if env is not None else os.environ, FLOW_CRASH_AT=crash)
    return subprocess.run([FLOW, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
                          input=input, **kwargs)


def crash_then_resume(path, run_id, crash, args=(), env=None, store_dir=None):
    """Runs PATH killed at CRASH (FLOW_CRASH_AT), then resumes it: (first, second)."""
    store_dir = store_dir or store()
    first = flow("run", path, "--store", store_dir, "--run-id", run_id, *args, env=env, crash=crash)
    second = flow("resume", run_id, "--store", store_dir, env=env)
    return first, second


def runs(store_dir):
    """The runs of a store by id, as `flow runs --json` lists them."""
    r = flow("runs", "--json", "--store", store_dir)
    return {x["id"]: x for x in json.loads(r.stdout or "[]")}


def record(store_dir, run_id):
    return runs(store_dir).get(run_id, {})


def status(store_dir, run_id):
    return record(store_dir, run_id).get("status")


def history(run_id, store_dir=None):
    return json.loads(flow("history", run_id, "--json", "--store", store_dir or store()).stdout)


# ---- local servers ----

def start_server(script, *args):
    """Starts tests/tools/SCRIPT (or a path); returns (process, "http://127.0.0.1:PORT").
    The process is killed at exit."""
    path = script if os.path.isabs(script) else os.path.join(TOOLS, script)
    p = subprocess.Popen([sys.executable, path, *args], stdout=subprocess.PIPE, text=True)
    _servers.append(p)
    return p, "http://127.0.0.1:" + p.stdout.readline().split()[1]


@functools.cache
def server(script="http_server.py", *args):
    """The base URL of a server started once per process (start_server)."""
    return start_server(script, *args)[1]


def fake_services(*args):
    """examples/fake_services.py (the GitHub and model stand-ins), once per process."""
    return server(os.path.join(ROOT, "examples", "fake_services.py"), *args)


def get_json(url):
    import urllib.request  # here: most cases never ask, and it is the slowest import (a process per case)
    with urllib.request.urlopen(url) as r:
        return json.load(r)


@atexit.register
def _stop_servers():
    for p in _servers:
        p.kill()
        p.wait()
