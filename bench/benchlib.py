"""What the whole-process benchmarks of bench/ share."""
import subprocess, sys, time


def run(cmd, **kw):
    """Runs cmd, its output captured as text; exits with its stderr's end if it fails."""
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr[-600:]}")
    return r


def timed(cmd):
    """Runs cmd (as run() does); its wall time in ms."""
    start = time.perf_counter()
    run(cmd)
    return (time.perf_counter() - start) * 1000
