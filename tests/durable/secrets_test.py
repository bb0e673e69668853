#!/usr/bin/env python3
"""Secrets: never written in plaintext to the store (checkpoints, history, records),
exported images or output; re-read from the environment on resume, with a clear error if
missing; revealed only to exec (and http headers)."""
import hashlib, json, os, subprocess, sys, urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import FLOW, case, check, flow, main, program, server, store  # noqa: E402

SECRET = "tok-" + os.urandom(8).hex()

PROGRAM = '''
let key = secret("FLOW_TEST_SECRET")
let auth = "Bearer ${key}"
print(auth, type(auth), key + "!", json.encode({h: auth}))
print(exec.run(["sh", "-c", "test \\"$T\\" = \\"Bearer $FLOW_TEST_SECRET\\" && echo revealed"], {env: {T: auth}}).stdout.trim())
sleep(1ms)
print("after", auth)
try { secret("FLOW_TEST_NOT_SET") } catch e { print(e.kind) }
'''



def secret_env():
    env = dict(os.environ, FLOW_TEST_SECRET=SECRET)
    env.pop("FLOW_TEST_NOT_SET", None)
    return env


def holding_secret(path):
    """The files under path that hold the secret in plaintext."""
    return [os.path.join(root, f) for root, _, files in os.walk(path) for f in files
            if SECRET.encode() in open(os.path.join(root, f), "rb").read()]


@case
def masked_and_resumed():
    env = secret_env()
    first = flow("run", program("s.flow", PROGRAM), "--store", store(), "--run-id", "s", env=env, crash="4:after-checkpoint")
    check("secrets print masked", first.stdout.startswith('Bearer *** secret ***! {"h":"Bearer ***"}\nrevealed\n'),
          first.stdout)
    no_env = {k: v for k, v in env.items() if k != "FLOW_TEST_SECRET"}
    r = flow("resume", "s", "--store", store(), env=no_env)
    check("resuming without the secret in the environment is a clear error",
          r.returncode == 2 and "FLOW_TEST_SECRET" in r.stderr and "not set" in r.stderr, r.stderr)
    r = flow("resume", "s", "--store", store(), env=env)
    check("with it, the run resumes", r.returncode == 0 and r.stdout == "after Bearer ***\nsecret\n", r.stdout + r.stderr)
    found = holding_secret(store())
    check("the store holds no plaintext secret (checkpoints, history, records)", not found, found)
    image = subprocess.run([FLOW, "export", "s", "--store", store()], capture_output=True, env=env).stdout
    check("an exported image holds no plaintext secret", len(image) > 0 and SECRET.encode() not in image)
    hist = flow("history", "s", "--json", "--store", store()).stdout
    check("the history shows secrets masked", SECRET not in hist and "***" in hist, hist[:300])


# Row 25/26/27: one rule. A secret's value goes over the wire (http url, headers, query,
# json, body; exec arguments, environment, stdin); what comes back is scrubbed of every
# secret the run holds; messages show it masked.
def echo_program(base):
    return f'''
let key = secret("FLOW_TEST_SECRET")
try {{ exec.run(["/nonexistent/" + key]) }} catch e {{ print(e.kind, e.message) }}
print(exec.shell("echo got $FLOW_TEST_SECRET").stdout.trim())
print(exec.run(["sh", "-c", "echo \\"$1\\" >&2", "sh", "x" + key]).stderr.trim())
print(exec.run(["cat"], {{stdin: key}}).stdout)
let echoed = http.get("{base}/echo", {{headers: {{Authorization: "Bearer ${{key}}"}}, query: {{k: key}}}}).json()
print(echoed.headers.Authorization, echoed.path)
let d = http.post("{base}/digest", {{body: key, headers: {{Authorization: key}}, query: {{k: key}}}}).json()
print("body", d.body, "query", d.query, "auth", d.authorization)
let j = http.post("{base}/digest", {{json: {{k: key}}}}).json()
print("json", j.body)
let u = http.post("{base}/digest?u=" + key).json()
print("url", u.query)
try {{ http.get("{base}/status/500?k=" + key) }} catch e {{ print(e.kind, e.message) }}
'''


@case
def over_the_wire():
    base = server()
    r = flow("run", program("echo.flow", echo_program(base)), "--store", store(), "--run-id", "echo", env=secret_env())
    out = r.stdout.splitlines()
    check("a secret in exec's program path is masked in its error message (row 25)",
          out[:1] == ["exec cannot run /nonexistent/***: No such file or directory"], r.stdout + r.stderr)
    check("what a child prints of a secret (inherited env, argument, stdin) is scrubbed from its result (row 26)",
          out[1:4] == ["got ***", "x***", "***"] and SECRET not in r.stdout, out)
    check("a server's echo of a secret (header, query) is scrubbed from the response (row 26)",
          out[4:5] == ["Bearer *** /echo?k=***"], out)
    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()
    q = "k=" + urllib.parse.quote(SECRET, safe="")
    check("http body, query and header values carry the secret's real value over the wire (row 27)",
          out[5:6] == [f"body {sha(SECRET)} query {sha(q)} auth {sha(SECRET)}"], out)
    check("an http json body carries the secret's real value (row 27)",
          out[6:7] == ["json " + sha(json.dumps({"k": SECRET}, separators=(",", ":")))], out)
    check("a secret in the url goes over the wire; messages show the url masked",
          out[7:9] == ["url " + sha("u=" + SECRET), f"http get {base}/status/500?k=*** answered 500"], out)
    found = holding_secret(store())
    check("after echoes by children and servers, the store holds no plaintext secret", r.returncode == 0 and not found,
          found)
    outputs = [subprocess.run([FLOW, c, "echo", "--store", store()] + extra, capture_output=True, env=secret_env()).stdout
               for c, extra in [("history", ["--json"]), ("trace", []), ("export", [])]]
    check("history, trace and export of that run hold no plaintext secret",
          all(o and SECRET.encode() not in o for o in outputs), [len(o) for o in outputs])


main()
