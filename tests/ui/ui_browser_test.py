"""`flow ui` in a real browser: headless Chromium (Debian's `chromium`), driven over the
DevTools protocol, opens the runs page and a failed run's page and finds what a person
looks for there; screenshots go to build/ui-screenshots/. Also the run page of a run of
10,000 effects: it prints the time to its first paint and to its first timeline rows."""
import json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from uilib import FAILING_LINE, Browser, Ui, chromium_path, fill_store, screenshots_dir  # noqa: E402
from testlib import case, check, flow, main, program, skip, store, tmp  # noqa: E402


def with_browser(body):
    if not chromium_path():
        skip("no chromium on this machine (bash scripts/setup.sh installs it)")
        return
    ui = Ui(fill_store(store()))
    browser = Browser()
    try:
        body(ui, browser)
    finally:
        browser.close()
        ui.stop()


@case
def runs_page():
    def body(ui, browser):
        browser.navigate(ui.base + "/")
        rows = browser.wait_for("document.querySelectorAll('#runs-body tr[data-run]').length === 3 && "
                                "[...document.querySelectorAll('#runs-body tr[data-run]')].map(r => r.innerText)")
        check("the runs page lists three runs", rows, browser.evaluate("document.body.innerText"))
        text = browser.evaluate("document.body.innerText")
        for run_id in ("done-1", "failed-1", "waiting-1"):
            check(f"it shows run id {run_id}", run_id in text, text)
        check("and their statuses", all(s in text for s in ("completed", "failed", "suspended")), text)
        chip = browser.evaluate("document.querySelector('.chip[data-status=failed] .count').textContent")
        check("the failed filter counts one run", chip == "1", chip)
        browser.screenshot(os.path.join(screenshots_dir(), "runs.png"))
        browser.evaluate("document.querySelector('.chip[data-status=failed]').click()")
        only = browser.wait_for("(() => { const ids = [...document.querySelectorAll('#runs-body tr[data-run]')]"
                                ".map(r => r.dataset.run); return ids.length === 1 && ids; })()")
        check("choosing failed shows only the failed run", only == ["failed-1"], only)
        href = browser.evaluate("document.querySelector('#runs-body a').getAttribute('href')")
        check("its id links to its page", href == "/runs/failed-1", href)
    with_browser(body)


@case
def failed_run_page():
    def body(ui, browser):
        browser.navigate(ui.base + "/runs/failed-1")
        message = browser.wait_for("document.getElementById('error-message').textContent")
        check("the page shows the error message", message == "order 42 has no items", message)
        kind = browser.evaluate("document.getElementById('error-kind').textContent")
        check("and its kind", kind == "validation:", kind)
        hit = browser.wait_for("(document.querySelector('.src.hit .code') || {}).textContent")
        check("the failing line's source text is highlighted", hit == FAILING_LINE, hit)
        line = browser.evaluate("document.querySelector('.src.hit').dataset.line")
        check("at line 4", line == "4", line)
        frames = browser.evaluate("[...document.querySelectorAll('.stack .frame')].map(f => f.textContent)")
        check("the stack names validate, then the script", len(frames) == 2 and frames[0].startswith("at validate ("),
              frames)
        rows = browser.wait_for("document.querySelectorAll('.tl-row[data-seq]').length")
        check("the timeline shows its effect", rows == 1, rows)
        state = browser.wait_for("document.getElementById('state-title').textContent")
        check("the state panel names its checkpoint", state and "after effect 1" in state, state)
        check("the run id is the page's title", browser.evaluate("document.getElementById('run-id').textContent")
              == "failed-1")
        browser.screenshot(os.path.join(screenshots_dir(), "failed-run.png"))
    with_browser(body)


@case
def suspended_run_signal_form():
    def body(ui, browser):
        browser.navigate(ui.base + "/runs/waiting-1")
        name = browser.wait_for("document.getElementById('signal-name').value")
        check("the signal form offers the signal the run waits for", name == "approve", name)
        browser.evaluate("document.getElementById('signal-value').value = 'true';"
                         "document.querySelector('#signal-form button').click()")
        said = browser.wait_for("(t => t.includes('signal approve') && t)(document.getElementById('message').textContent)")
        check("sending it says it was delivered", said and "delivered" in said, said)
        browser.evaluate("document.getElementById('btn-resume').click()")
        done = browser.wait_for("(t => t.includes('finished') && t)(document.getElementById('message').textContent)", 60)
        check("Resume runs the run to its end", done and "exit 0" in done, done)
        status = browser.wait_for("(t => t === 'completed' && t)(document.getElementById('run-status').textContent)")
        check("and the page shows it completed", status == "completed", status)
        browser.screenshot(os.path.join(screenshots_dir(), "resumed-run.png"))
    with_browser(body)


def state_value(browser, name):
    """The JSON text shown for `name` in the state panel (its first row of that name)."""
    return browser.evaluate(
        "(r => r ? r.querySelector('td').textContent : null)([...document.querySelectorAll('#state-body tr')]"
        f".find(tr => tr.querySelector('th').textContent === {json.dumps(name)}))")


def wait_state_title(browser, prefix):
    return browser.wait_for(f"(t => t.startsWith({json.dumps(prefix)}) && t)"
                            "(document.getElementById('state-title').textContent)")


@case
def past_state_on_the_timeline():
    """done-1: total is 0, 0, 1, 3 after its effects 1..4 (a print after each change)."""
    def body(ui, browser):
        browser.navigate(ui.base + "/runs/done-1")
        check("the page opens on the last state", wait_state_title(browser, "after effect 4"))
        check("where total is 3", state_value(browser, "total") == "3", state_value(browser, "total"))
        browser.wait_for("!!document.querySelector('.tl-row[data-seq=\"2\"]')")
        browser.evaluate("document.querySelector('.tl-row[data-seq=\"2\"]').click()")
        check("clicking effect 2 on the timeline shows the state after it", wait_state_title(browser, "after effect 2"))
        check("with total as it was then (1)", state_value(browser, "total") == "1", state_value(browser, "total"))
        check("the address names it (?at=2)", browser.evaluate("location.search") == "?at=2")
        check("the fork form offers that checkpoint",
              browser.evaluate("document.getElementById('fork-at').textContent") == "the checkpoint after effect 2")
        browser.screenshot(os.path.join(screenshots_dir(), "past-state.png"))
        browser.navigate(ui.base + "/runs/done-1?at=1")
        check("loading ?at=1 shows the state after effect 1", wait_state_title(browser, "after effect 1"))
        check("where total is 0", state_value(browser, "total") == "0", state_value(browser, "total"))
        check("its row is the selected one",
              browser.evaluate("(document.querySelector('.tl-row.selected') || {dataset: {}}).dataset.seq") == "1")
    with_browser(body)


@case
def fork_from_the_page():
    def body(ui, browser):
        browser.navigate(ui.base + "/runs/done-1?at=2")
        wait_state_title(browser, "after effect 2")
        browser.evaluate("document.getElementById('fork-sets').value = 'total=100';"
                         "document.querySelector('#fork-form button').click()")
        done = browser.wait_for("(t => t.includes('finished') && t)(document.getElementById('message').textContent)", 60)
        check("Fork runs flow fork to its end", done and "exit 0" in done, done)
        new_run = browser.evaluate("(a => a && a.textContent.replace('open run ', ''))"
                                   "(document.getElementById('new-run-link'))")
        check("and links to the new run", new_run, done)
        history = json.loads(flow("history", new_run, "--json", "--store", store()).stdout)
        forked = [i for i, e in enumerate(history) if e["effect"] == "fork"]
        prints = [json.loads(e["args"])[0] for e in history[forked[0] if forked else 0:] if e["effect"] == "print"]
        check("the fork went on from effect 2 with total = 100", forked and prints == ["step 2", "total 102"], history)
        # The link's address, opened as navigate does (it waits for the new page to load).
        browser.navigate(ui.base + browser.evaluate("document.getElementById('new-run-link').getAttribute('href')"))
        origin = browser.wait_for("(t => t.includes('fork of run') && t)(document.getElementById('run-meta').textContent)")
        check("its page says where it came from", origin and "fork of run done-1 after its effect 2" in origin, origin)
    with_browser(body)


@case
def rerun_after_fixing_the_file():
    """README, "A run failed at 3 a.m.", with the UI: see the error, fix the file, press Rerun."""
    def body(ui, browser):
        path = json.loads(flow("runs", "--json", "--store", store()).stdout)
        path = next(r["program"] for r in path if r["id"] == "failed-1")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace(FAILING_LINE, '  print("order ${n} checked")'))
        browser.navigate(ui.base + "/runs/failed-1")
        hit = browser.wait_for("(document.querySelector('.src.hit .code') || {}).textContent")
        check("after the fix, the page still quotes the line the run failed on", hit == FAILING_LINE, hit)
        checked = browser.wait_for("document.getElementById('rerun-use-file').checked")
        check("the file changed: Rerun offers to run it", checked is True, checked)
        browser.evaluate("document.getElementById('btn-rerun').click()")
        done = browser.wait_for("(t => t.includes('finished') && t)(document.getElementById('message').textContent)", 60)
        check("Rerun runs the fixed file to its end", done and "exit 0" in done, done)
        # The link's address, opened as navigate does (it waits for the new page to load).
        browser.navigate(ui.base + browser.evaluate("document.getElementById('new-run-link').getAttribute('href')"))
        status = browser.wait_for("(t => t === 'completed' && t)(document.getElementById('run-status').textContent)")
        check("the new run's page shows it completed", status == "completed", status)
        meta = browser.evaluate("document.getElementById('run-meta').textContent")
        check("as a rerun of failed-1", "rerun of run failed-1" in meta, meta)
        browser.screenshot(os.path.join(screenshots_dir(), "rerun.png"))
    with_browser(body)


@case
def hostile_names_stay_text():
    if not chromium_path():
        skip("no chromium on this machine")
        return
    name = '<img src=x onerror="document.title=`pwned`">.flow'
    path = program(name, 'throw error("x", "<b>bold</b> <script>document.title=1</script>")\n')
    flow("run", path, "--store", store(), "--run-id", "hostile-1")
    ui = Ui(store())
    browser = Browser()
    try:
        browser.navigate(ui.base + "/")
        shown = browser.wait_for("(document.querySelector('td.program') || {}).textContent")
        check("a program name with markup is shown as text", shown and shown.endswith(name), shown)
        check("and builds no element", browser.evaluate("document.querySelectorAll('main img').length") == 0)
        browser.navigate(ui.base + "/runs/hostile-1")
        message = browser.wait_for("document.getElementById('error-message').textContent")
        check("an error message with markup is shown as text", message == "<b>bold</b> <script>document.title=1</script>",
              message)
        check("nothing in it ran", browser.evaluate("document.title") == "Flow run hostile-1",
              browser.evaluate("document.title"))
    finally:
        browser.close()
        ui.stop()


@case
def run_page_10000_effects():
    """The figure of issue 11 (point 11): the run page of a run of 10,000 effects. It prints
    first paint and first timeline rows (ms from navigation start); no timed assertion."""
    if not chromium_path():
        skip("no chromium on this machine")
        return
    path = program("long.flow", 'for i in range(10000) { print("effect ${i}") }\n')
    r = flow("run", path, "--store", store(), "--run-id", "long-1", "--durability", "async", timeout=600)
    check("the run of 10,000 effects completes", r.returncode == 0, r.stderr[-500:])
    ui = Ui(store())
    browser = Browser()
    try:
        flow("run", program("short.flow", 'print("one effect")\n'), "--store", store(), "--run-id", "short-1")

        def load(run_id):
            browser.navigate(ui.base + "/runs/" + run_id)
            figures = browser.wait_for(
                "(() => { const ready = document.documentElement.dataset.timelineReadyMs;"
                "  const fcp = performance.getEntriesByName('first-contentful-paint')[0];"
                "  return ready && fcp && {first_contentful_paint_ms: Math.round(fcp.startTime),"
                "                          timeline_rows_ms: Math.round(Number(ready))}; })()", 60)
            return figures
        # The first load reads the run's database (then its history is cached): cold, then warm.
        long_run = [load("long-1") for _ in range(3)]
        short_run = [load("short-1") for _ in range(3)]
        print("run page, ms from navigation start (cold, warm, warm):")
        print("  10,000 effects:", json.dumps(long_run))
        print("  1 effect:      ", json.dumps(short_run))
        browser.navigate(ui.base + "/runs/long-1")
        browser.wait_for("document.documentElement.dataset.timelineReadyMs", 60)
        total = browser.evaluate("document.getElementById('timeline-count').textContent")
        check("the timeline counts 10,000 entries", total == "10000 entries", total)
        rows = browser.evaluate("document.querySelectorAll('.tl-row').length")
        check("only the rows in view are in the page", 0 < rows < 200, rows)
        browser.evaluate("const v = document.getElementById('tl-viewport'); v.scrollTop = v.scrollHeight")
        last = browser.wait_for("(e => e && e.dataset.seq === '10000' && e.dataset.seq)"
                                "(document.querySelector('.tl-row[data-seq=\"10000\"]'))")
        check("scrolled to the end, effect 10,000 is drawn", last == "10000", last)
        browser.evaluate("document.querySelector('.tl-row[data-seq=\"9990\"]').click()")
        title = browser.wait_for("(t => t.startsWith('after effect 9990') && t)"
                                 "(document.getElementById('state-title').textContent)")
        check("choosing an earlier effect shows the state after it", title, title)
        check("loop variable i as it was then (9989)", state_value(browser, "i") == "9989", state_value(browser, "i"))
        browser.screenshot(os.path.join(screenshots_dir(), "long-run.png"))
    finally:
        browser.close()
        ui.stop()


if __name__ == "__main__":
    main()
