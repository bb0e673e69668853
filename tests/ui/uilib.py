"""Helpers of the `flow ui` tests: a store with runs in it, the server started on a free
port (--port 0: it prints the port it got), HTTP requests, and headless Chromium driven
over the DevTools protocol (a small websocket client: the standard library has none)."""
import base64, json, os, shutil, socket, struct, subprocess, sys, tempfile, time, urllib.error, urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, check, flow, program, skip, tmp  # noqa: E402

FAILING_LINE = '  throw error("validation", "order ${n} has no items")'
FAILED_PROGRAM = f"""let order = 42
print("checking order ${{order}}")
fn validate(n) {{
{FAILING_LINE}
}}
validate(order)
"""
WAITING_PROGRAM = """print("waiting for approval")
let ok = signal.wait("approve", {timeout: 1h})
print("approved: ${ok}")
"""
DONE_PROGRAM = 'let total = 0\nfor i in range(3) { total = total + i; print("step ${i}") }\nprint("total ${total}")\n'


def fill_store(store_dir):
    """A completed run (done-1), a failed run (failed-1, its error on line 4) and a
    suspended run waiting for signal `approve` (waiting-1)."""
    made = [
        ("done-1", program("done.flow", DONE_PROGRAM), (), 0),
        ("failed-1", program("failed.flow", FAILED_PROGRAM), (), 1),
        ("waiting-1", program("waiting.flow", WAITING_PROGRAM), ("--detach",), 75),
    ]
    for run_id, path, extra, code in made:
        r = flow("run", path, "--store", store_dir, "--run-id", run_id, *extra)
        if r.returncode != code:
            raise RuntimeError(f"flow run {run_id}: exit {r.returncode}: {r.stderr}")
    return store_dir


class Ui:
    """`flow ui` on a free port, stopped at the end of the case (with stop())."""

    def __init__(self, store_dir, *args, env=None):
        self.process = subprocess.Popen([FLOW, "ui", "--store", store_dir, "--port", "0", *args],
                                        stderr=subprocess.PIPE, text=True, env=env)
        self.base = None
        for line in self.process.stderr:
            if "serving http://" in line:
                url = line.split("serving ", 1)[1].strip().rstrip("/")
                port = url.rsplit(":", 1)[1]
                self.base = "http://127.0.0.1:" + port
                break
        if self.base is None:
            raise RuntimeError("flow ui did not start: " + self.process.stderr.read())

    def request(self, method, path, body=None, headers=None, content_type="application/json"):
        """(status, headers, parsed JSON or text) of one request; no redirects followed."""
        data = None
        headers = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            if content_type:
                headers.setdefault("Content-Type", content_type)
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=30) as r:
                return r.status, dict(r.headers), parse(r.read(), r.headers)
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), parse(e.read(), e.headers)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body={} if body is None else body, **kw)

    def wait_action(self, action_id, limit=60):
        """The action's final record, once its child process has ended."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            status, _, a = self.get(f"/api/actions/{action_id}")
            if status == 200 and a["done"]:
                return a
            time.sleep(0.1)
        return None

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.process.stderr.close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def parse(raw, headers):
    if "json" in (headers.get("Content-Type") or ""):
        return json.loads(raw)
    return raw.decode(errors="replace")


def screenshots_dir():
    """build/ui-screenshots, beside the binary under test."""
    path = os.path.join(os.path.dirname(FLOW), "ui-screenshots")
    os.makedirs(path, exist_ok=True)
    return path


# ---- headless Chromium over the DevTools protocol ----

def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: text frames, client-masked."""

    def __init__(self, url):
        rest = url.split("://", 1)[1]
        hostport, path = rest.split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("the DevTools websocket closed during its handshake")
            response += chunk
        if b" 101 " not in response.split(b"\r\n", 1)[0]:
            raise RuntimeError("the DevTools websocket refused: " + response.decode(errors="replace"))
        self.buffer = response.split(b"\r\n\r\n", 1)[1]

    def send(self, text):
        payload = text.encode()
        header = bytes([0x81])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("the DevTools websocket closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def receive(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise RuntimeError("the DevTools websocket closed")
            if opcode in (0, 1, 2):
                message += payload
                if b0 & 0x80:
                    return message.decode()


class Browser:
    """A headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, width=1400, height=1000):
        self.profile = tempfile.mkdtemp(prefix="flow-ui-chromium-")
        # Its stderr goes to a file: Chromium writes to it all along, and a pipe nobody
        # reads would fill and stop it.
        self.log_path = os.path.join(self.profile, "stderr.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self.log)
        browser_url = None
        deadline = time.monotonic() + 60
        while browser_url is None and time.monotonic() < deadline and self.process.poll() is None:
            with open(self.log_path) as f:
                for line in f:
                    if line.startswith("DevTools listening on "):
                        browser_url = line.split(" on ", 1)[1].strip()
            time.sleep(0.05)
        if not browser_url:
            raise RuntimeError("chromium did not start its DevTools endpoint: " + open(self.log_path).read()[-2000:])
        port = browser_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        self.ws = WebSocket(pages[0]["webSocketDebuggerUrl"])
        self.next_id = 0
        self.events = []
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.receive())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def navigate(self, url):
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def wait_event(self, name, limit=60):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if any(e.get("method") == name for e in self.events):
                return True
            self.events.append(json.loads(self.ws.receive()))
        return False

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, limit=30):
        """Polls a JavaScript expression until it is truthy; its value, or None (gave up)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        return None

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        self.process.kill()
        self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
