#!/usr/bin/env python3
"""Secrets: never written in plaintext to the store (checkpoints, history, records),
exported images or output; re-read from the environment on resume, with a clear error if
missing; revealed only to exec (and http headers)."""
import os, subprocess, sys, tempfile

FLOW = os.path.abspath(sys.argv[1])
SECRET = "tok-" + os.urandom(8).hex()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testlib import check, failures, finish, start_server  # noqa: E402


PROGRAM = '''
let key = secret("FLOW_TEST_SECRET")
let auth = "Bearer ${key}"
print(auth, type(auth), key + "!", json.encode({h: auth}))
print(exec.run(["sh", "-c", "test \\"$T\\" = \\"Bearer $FLOW_TEST_SECRET\\" && echo revealed"], {env: {T: auth}}).stdout.trim())
sleep(1ms)
print("after", auth)
try { secret("FLOW_TEST_NOT_SET") } catch e { print(e.kind) }
'''

with tempfile.TemporaryDirectory() as tmp:
    prog = os.path.join(tmp, "s.flow")
    open(prog, "w").write(PROGRAM)
    store = os.path.join(tmp, "store")
    env = dict(os.environ, FLOW_TEST_SECRET=SECRET)
    env.pop("FLOW_TEST_NOT_SET", None)
    first = subprocess.run([FLOW, "run", prog, "--store", store, "--run-id", "s"], capture_output=True, text=True,
                           env=dict(env, FLOW_CRASH_AT="4:after-checkpoint"))
    check("secrets print masked", first.stdout.startswith('Bearer *** secret ***! {"h":"Bearer ***"}\nrevealed\n'),
          first.stdout)
    no_env = {k: v for k, v in env.items() if k != "FLOW_TEST_SECRET"}
    r = subprocess.run([FLOW, "resume", "s", "--store", store], capture_output=True, text=True, env=no_env)
    check("resuming without the secret in the environment is a clear error",
          r.returncode == 2 and "FLOW_TEST_SECRET" in r.stderr and "not set" in r.stderr, r.stderr)
    r = subprocess.run([FLOW, "resume", "s", "--store", store], capture_output=True, text=True, env=env)
    check("with it, the run resumes", r.returncode == 0 and r.stdout == "after Bearer ***\nsecret\n", r.stdout + r.stderr)
    found = []
    for root, _, files in os.walk(store):
        for f in files:
            if SECRET.encode() in open(os.path.join(root, f), "rb").read():
                found.append(os.path.join(root, f))
    check("the store holds no plaintext secret (checkpoints, history, records)", not found, found)
    image = subprocess.run([FLOW, "export", "s", "--store", store], capture_output=True, env=env).stdout
    check("an exported image holds no plaintext secret", len(image) > 0 and SECRET.encode() not in image)
    hist = subprocess.run([FLOW, "history", "s", "--json", "--store", store], capture_output=True, text=True).stdout
    check("the history shows secrets masked", SECRET not in hist and "***" in hist, hist[:300])

finish()
