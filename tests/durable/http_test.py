#!/usr/bin/env python3
"""The http effect against a local server: methods, query, json bodies, .json(), status
checks, failure reasons, timeouts, body caps and the Idempotency-Key header."""
import os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from testlib import FLOW, case, check, main, program, server  # noqa: E402


def source(base):
    return f"""
let base = "{base}"
let r = http.get("${{base}}/echo", {{query: {{q: "a b&c", n: 2}}}})
print(r.status, r.json().path)
// expect: 200 /echo?q=a%20b%26c&n=2
for m in ["PUT", "PATCH", "DELETE", "POST"] {{
  let e = http.request(m, "${{base}}/echo", {{json: {{x: 1}}, headers: {{"X-Test": "yes"}}}}).json()
  print(e.method, e.body, e.headers["X-Test"], e.headers["Content-Type"])
}}
// expect: PUT {{"x":1}} yes application/json
// expect: PATCH {{"x":1}} yes application/json
// expect: DELETE {{"x":1}} yes application/json
// expect: POST {{"x":1}} yes application/json
let sent = http.put("${{base}}/echo", {{body: "raw text"}}).json()
print(sent.body, sent.headers["Idempotency-Key"] != null)
// expect: raw text true
try {{ http.get("${{base}}/status/503") }} catch e {{ print(e.kind, e.data.status, type(e.data.headers)) }}
// expect: http 503 map
print(http.get("${{base}}/status/404", {{check: false}}).status)
// expect: 404
try {{ http.get("http://127.0.0.1:1/") }} catch e {{ print(e.kind, e.data.reason) }}
// expect: http connect
try {{ http.get("${{base}}/slow/3000", {{timeout: 200ms}}) }} catch e {{ print(e.kind) }}
// expect: timeout
try {{ timeout 300ms {{ http.get("${{base}}/slow/3000") }} }} catch e {{ print(e.kind) }}
// expect: timeout
try {{ http.get("${{base}}/big/50000000", {{max_bytes: 1000000}}) }} catch e {{ print(e.kind, e.data.reason) }}
// expect: http too_large
print(len(http.get("${{base}}/big/100000").body))
// expect: 100000
try {{ http.request("BREW", "${{base}}/echo") }} catch e {{ print(e.kind) }}
// expect: type
for u in ["file:///etc/passwd", "not a url", "gopher://127.0.0.1/", "http://[::1", "${{base}}/echo\\u0000/other"] {{
  try {{ http.get(u) }} catch e {{ print(e.kind, e.data.reason) }}
}}
// expect: http url
// expect: http url
// expect: http url
// expect: http url
// expect: http url
for h in [{{"X-A": "a\\u0000b"}}, {{"X-A\\u0000B": "v"}}, {{"": "v"}}, {{"X-A": "a\\nB: c"}}] {{
  try {{ http.get("${{base}}/echo", {{headers: h}}) }} catch e {{ print(e.kind) }}
}}
// expect: type
// expect: type
// expect: type
// expect: type
"""


@case
def requests():
    """The program's `// expect:` lines, checked by the golden runner (tests/e2e/run_golden.py)."""
    path = program("http.flow", source(server()))
    r = subprocess.run([sys.executable, os.path.join(HERE, "..", "e2e", "run_golden.py"), FLOW, path],
                       capture_output=True, text=True)
    check("the http effect prints what its expect lines say", r.returncode == 0, r.stdout)


main()
