#!/usr/bin/env python3
"""flow lsp: diagnostics after an edit (issue 13 point 8), on the program of
bench/compile_bench.py (5,000 lines in 20 modules, each importing up to two earlier ones,
and a main file importing all 20). A scripted editor opens the main file and module m10,
then types: each edit is a didChange with the whole text (as flow lsp asks), and the
figure is the time from sending it to receiving the publishDiagnostics of the edited file,
measured by the client. Edits: one in the main file (all 21 files are compiled again, the
20 unchanged ones from the parse cache), one in m10 (then its importer, the main file,
is checked again too: the time until that is reported as well), and the first open (every
file parsed, nothing cached).

Usage: python3 bench/lsp_bench.py [FLOW_BINARY] [--edits=N] (default build/flow, 30 edits)"""
import os, statistics, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lsp"))
from compile_bench import write_program  # noqa: E402
from lsp_client import Client, uri  # noqa: E402


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flow = os.path.abspath(args[0] if args else "build/flow")
    edits = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--edits=")), 30)
    work = tempfile.mkdtemp(prefix="flow-lsp-bench-")
    os.makedirs(os.path.join(work, "lib"))
    total = write_program(work, 20, 5000)
    main_path, module_path = os.path.join(work, "main.flow"), os.path.join(work, "lib", "m10.flow")
    main_text, module_text = open(main_path).read(), open(module_path).read()

    c = Client(flow, cwd=work)
    c.initialize(work)
    start = time.perf_counter()
    c.open(main_path)
    assert c.diagnostics(main_path) == [], "the benchmark's program has errors"
    first_open = (c.last_time - start) * 1000
    c.open(module_path)
    c.sync()

    def edit(path, text, version, also=None):
        start = time.perf_counter()
        c.change(path, text, version)
        diags = c.diagnostics(path)
        own = (c.last_time - start) * 1000
        other = None
        if also:
            c.diagnostics(also)
            other = (c.last_time - start) * 1000
        c.sync()
        return own, other, diags

    main_times, module_times, importer_times = [], [], []
    for i in range(edits):
        # Typing a statement into the main file, then into a module: each keeps the program valid
        # but for the odd edit, which leaves an undefined name (a diagnostic to compute).
        name = "ok" if i % 2 == 0 else "undefined_name"
        own, _, diags = edit(main_path, main_text + f"print({i} + {'1' if name == 'ok' else name})\n", 2 + i)
        assert (name != "ok") == bool(diags), diags
        main_times.append(own)
        own, other, _ = edit(module_path, module_text + f"let extra_{i} = {i}\n", 2 + i, also=main_path)
        module_times.append(own)
        importer_times.append(other)
    c.close()

    print(f"flow lsp, diagnostics after an edit ({total:,} lines: 20 modules + the main file; {edits} edits each):")
    print(f"  first open of the main file (all 21 files parsed)      {first_open:7.1f} ms")
    for label, xs in (("edit the main file: its diagnostics", main_times),
                      ("edit module m10: its diagnostics", module_times),
                      ("edit module m10: then its importer's (main)", importer_times)):
        print(f"  {label:<52} median {statistics.median(xs):6.1f} ms   p90 {percentile(xs, 90):6.1f} ms")
    print("  target: <= 50 ms from the edit to the edited file's diagnostics")


if __name__ == "__main__":
    main()
