#!/usr/bin/env python3
"""A misbehaving HTTP server for tests, on 127.0.0.1 and a free port (`PORT n` first).

  /drip-headers    the headers one byte a second      /drip-body     the body one byte a second
  /chunked-50mb    a 50 MB chunked body               /gzip-bomb     1 MB of gzip that inflates to 1 GB
  /lying-length    Content-Length 100000, 10 bytes    /reset         half a body, then a TCP reset
  /bad-json        `{bad`                             /deep-json     a million `[`
  /bad-utf8        bytes that are not UTF-8           /redirect-loop a redirect to itself
"""
import functools, os, socket, struct, time, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@functools.cache
def bomb():
    """A gzip of 1 GiB of zeros, made at the first request for it. The compressor is
    flushed after each MiB, so every MiB after the first deflates to the same bytes: one
    compressed MiB repeated (a fraction of a second, where compressing the whole GiB takes
    seconds in each process that starts this server)."""
    mib = b"\0" * (1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(mib, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # gzip, deflate, no name, no time
    return header + first + again * 1023 + deflate.flush() + struct.pack("<II", crc, (1 << 30) & 0xFFFFFFFF)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def plain(self, body, status=200, extra=None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    def route(self):
        p = self.path
        if p == "/drip-headers":
            for c in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
                self.wfile.write(bytes([c]))
                self.wfile.flush()
                time.sleep(1)
        elif p == "/drip-body":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1)
        elif p == "/chunked-50mb":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"y" * 65536
            for _ in range(50 * 16):
                self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif p == "/gzip-bomb":
            self.plain(bomb(), extra={"Content-Encoding": "gzip"})
        elif p == "/lying-length":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif p == "/reset":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"z" * 50000)
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())  # linger 0: the close sends a reset
        elif p == "/bad-json":
            self.plain(b"{bad")
        elif p == "/deep-json":
            self.plain(b"[" * 1000000)
        elif p == "/bad-utf8":
            self.plain(b'"\xff\xfe\xc3"')
        elif p == "/redirect-loop":
            self.plain(b"", 302, {"Location": "/redirect-loop"})
        else:
            self.plain(b"not found", 404)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # clients that give up are expected
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
