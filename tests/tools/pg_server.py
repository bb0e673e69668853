#!/usr/bin/env python3
"""A real PostgreSQL server for the tests and benchmarks of the PostgreSQL store, started in
a temporary folder on 127.0.0.1 and a free port, stopped at exit (Debian's `postgresql`
package: scripts/setup.sh installs it).

    pg_server.py start DIR      starts one in DIR; prints its address (postgresql://...)
    pg_server.py stop DIR       stops it
    pg_server.py start-shared BUILD   starts the server a whole ctest run shares (a CTest
    pg_server.py stop-shared BUILD    fixture, tests/CMakeLists.txt): BUILD/pg-shared.json says
                                      where; each test makes its own databases there

From Python: PgServer(folder).start() / .database(name) / .stop(). The cluster is made
once per build folder with initdb (about a second) and copied for each server (a tenth).
Under root (CI) the server runs as `nobody`: PostgreSQL refuses to run as root."""
import fcntl, glob, hashlib, json, os, pwd, shutil, socket, subprocess, sys

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1:] or [""]
PG_BIN = PG_BIN[0]
# The template cluster, per PostgreSQL version and user running the tests.
TEMPLATE_ROOT = os.environ.get("FLOW_PG_TEMPLATE", os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"flow-pg-template-{os.path.basename(os.path.dirname(PG_BIN))}-{os.getuid()}"))


def available():
    """Why no server can be started here ("" if one can)."""
    if not PG_BIN or not os.path.exists(os.path.join(PG_BIN, "initdb")):
        return "PostgreSQL is not installed (scripts/setup.sh installs Debian's postgresql)"
    return ""


def _as_server_user(cmd):
    return ["runuser", "-u", "nobody", "--", *cmd] if os.getuid() == 0 else cmd


def _give_to_server_user(path):
    if os.getuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for root, dirs, files in os.walk(path):
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
            for f in files:
                os.chown(os.path.join(root, f), nobody.pw_uid, nobody.pw_gid)


def _template():
    """A cluster made by initdb once (per machine and version), copied for each server."""
    data = os.path.join(TEMPLATE_ROOT, "data")
    os.makedirs(TEMPLATE_ROOT, exist_ok=True)
    os.chmod(TEMPLATE_ROOT, 0o755)
    with open(os.path.join(TEMPLATE_ROOT, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent tests make it once
        if not os.path.exists(os.path.join(data, "PG_VERSION.done")):
            shutil.rmtree(data, ignore_errors=True)
            os.makedirs(data)
            _give_to_server_user(TEMPLATE_ROOT)
            subprocess.run(_as_server_user([os.path.join(PG_BIN, "initdb"), "-D", data, "-A", "trust", "-U", "flow",
                                            "--no-sync", "-E", "UTF8", "--locale", "C"]),
                           check=True, capture_output=True)
            open(os.path.join(data, "PG_VERSION.done"), "w").close()
    return data


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, folder):
        self.folder = os.path.abspath(folder)
        self.data = os.path.join(self.folder, "data")
        self.port = None

    def start(self, synchronous_commit="on"):
        os.makedirs(self.folder, exist_ok=True)
        shutil.copytree(_template(), self.data, symlinks=True)
        os.remove(os.path.join(self.data, "PG_VERSION.done"))
        os.chmod(self.data, 0o700)
        _give_to_server_user(self.folder)
        os.chmod(self.folder, 0o755)
        for attempt in range(5):  # a port taken between the look and the start: another
            self.port = free_port()
            opts = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=on "
                    f"-c synchronous_commit={synchronous_commit} -c max_connections=200")
            r = subprocess.run(_as_server_user([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-o", opts,
                                                "-l", os.path.join(self.folder, "log"), "-w", "start"]),
                               capture_output=True, text=True)
            if r.returncode == 0:
                return self
        raise RuntimeError("PostgreSQL did not start: " + r.stdout + r.stderr + self.log())

    @staticmethod
    def attach(info_file):
        """The server a ctest run shares (start-shared), from the file that says where it is."""
        with open(info_file) as f:
            info = json.load(f)
        server = PgServer(info["folder"])
        server.port = info["port"]
        server.shared = True
        return server

    def log(self):
        try:
            with open(os.path.join(self.folder, "log")) as f:
                return f.read()
        except OSError:
            return ""

    def address(self, database="postgres"):
        return f"postgresql://flow@127.0.0.1:{self.port}/{database}"

    def sql(self, statement, database="postgres"):
        """Runs STATEMENT in DATABASE (a name, or an address database() gave): its output."""
        address = database if "://" in database else self.address(database)
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-d", address, "-c", statement], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {statement}: {r.stderr}")
        return r.stdout

    def database(self, name):
        """A new empty database named after NAME (and this process, on a shared server): its address."""
        if getattr(self, "shared", False):
            name = f"{name}_{os.getpid()}"
        self.sql(f'CREATE DATABASE "{name}"')
        return self.address(name)

    def restart(self):
        """Stops the server (its connections cut) and starts it again on the same port."""
        # -l: the new server's output to the log, not to this pipe (which it would keep open)
        r = subprocess.run(_as_server_user([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "fast", "-w",
                                            "-l", os.path.join(self.folder, "log"), "restart"]),
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("PostgreSQL did not restart: " + r.stdout + r.stderr + self.log())

    def stop(self):
        if self.port is not None:
            subprocess.run(_as_server_user([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w",
                                            "stop"]), capture_output=True)
            self.port = None


def shared_folder(build):
    """Where the shared server of build folder BUILD lives: under /tmp, which the server's
    user reaches (a build folder may be under a folder only root can enter)."""
    digest = hashlib.sha1(os.path.abspath(build).encode()).hexdigest()[:12]
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), f"flow-pg-shared-{os.getuid()}-{digest}")


def _stop_folder(folder):
    data = os.path.join(folder, "data")
    if os.path.exists(os.path.join(data, "postmaster.pid")):
        subprocess.run(_as_server_user([os.path.join(PG_BIN, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"]),
                       capture_output=True)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop", "start-shared", "stop-shared"):
        sys.exit(__doc__)
    if sys.argv[1] in ("start-shared", "stop-shared"):
        folder, info = shared_folder(sys.argv[2]), os.path.join(sys.argv[2], "pg-shared.json")
        _stop_folder(folder)  # a server an interrupted run left
        shutil.rmtree(folder, ignore_errors=True)
        if os.path.exists(info):
            os.remove(info)
        if sys.argv[1] == "start-shared":
            if available():
                sys.exit(available())
            server = PgServer(folder).start()
            with open(info + ".tmp", "w") as f:
                json.dump({"folder": folder, "port": server.port}, f)
            os.replace(info + ".tmp", info)
            print(server.address())
    elif sys.argv[1] == "start":
        if available():
            sys.exit(available())
        print(PgServer(sys.argv[2]).start().address())
    else:  # stop
        s = PgServer(sys.argv[2])
        subprocess.run(_as_server_user([os.path.join(PG_BIN, "pg_ctl"), "-D", s.data, "-m", "fast", "-w", "stop"]))
