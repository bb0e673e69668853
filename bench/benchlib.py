"""What the whole-process benchmarks of bench/ share."""
import subprocess, sys, time


def timed(cmd):
    """Runs cmd (its output thrown away); its wall time in ms. Exits with its stderr's end if it fails."""
    start = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode()[-600:]}")
    return (time.perf_counter() - start) * 1000
