"""A scripted LSP client for the tests and the benchmark: starts `flow lsp`, frames
messages as the protocol's base layer does (Content-Length), and waits for answers."""
import json, os, queue, subprocess, threading, time


def uri(path):
    from urllib.parse import quote
    return "file://" + quote(os.path.abspath(path))


class Client:
    def __init__(self, flow, cwd=None):
        self.proc = subprocess.Popen([flow, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=cwd)
        self.inbox = queue.Queue()
        self.next_id = 1
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self.inbox.put(None)
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            body = out.read(length)
            self.inbox.put((time.perf_counter(), json.loads(body)))

    def send_raw(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message):
        body = json.dumps(message).encode()
        self.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method, params=None, timeout=20):
        """Sends a request and returns its response (the whole message: result or error);
        notifications that arrive meanwhile are kept for wait_for."""
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})
        return self.wait_for(lambda m: m.get("id") == rid and "method" not in m, timeout)

    def wait_for(self, match, timeout=20):
        deadline = time.time() + timeout
        kept = []
        try:
            while True:
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError("no matching message from flow lsp")
                item = self.inbox.get(timeout=left)
                if item is None:
                    raise EOFError("flow lsp closed its output")
                if match(item[1]):
                    self.last_time = item[0]
                    return item[1]
                kept.append(item)
        finally:
            for item in kept:
                self.inbox.put(item)

    def diagnostics(self, path, timeout=20):
        """The next publishDiagnostics for PATH: its list."""
        want = uri(path)
        m = self.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                          and m["params"]["uri"] == want, timeout)
        return m["params"]["diagnostics"]

    def sync(self):
        """Waits until the server has handled everything sent so far, and drops what it said
        meanwhile: it answers in order, so when a request's answer is in, every notification
        sent before it is too."""
        self.request("flow/sync")  # an unknown method: an error answer, after the rest
        while True:
            try:
                self.inbox.get_nowait()
            except queue.Empty:
                return

    def initialize(self, root):
        r = self.request("initialize", {"processId": os.getpid(), "rootUri": uri(root), "capabilities": {}})
        self.notify("initialized", {})
        return r

    def open(self, path, text=None):
        if text is None:
            with open(path) as f:
                text = f.read()
        self.notify("textDocument/didOpen",
                    {"textDocument": {"uri": uri(path), "languageId": "flow", "version": 1, "text": text}})

    def change(self, path, text, version=2):
        self.notify("textDocument/didChange",
                    {"textDocument": {"uri": uri(path), "version": version}, "contentChanges": [{"text": text}]})

    def at(self, method, path, line, character):
        return self.request(method, {"textDocument": {"uri": uri(path)},
                                     "position": {"line": line, "character": character}})

    def close(self, timeout=20):
        """shutdown, exit: the exit code."""
        self.request("shutdown")
        self.notify("exit", None)
        self.proc.stdin.close()
        return self.proc.wait(timeout)
