#!/usr/bin/env python3
"""flow lsp (issue 13 point 6): a scripted editor session over stdio. initialize; didOpen
of a program of two files; go to definition within a file and across an import; hover
with a builtin's signature and doc, and a function's signature and comment; completion
of names, builtins, module members and methods; diagnostics for a broken file, cleared
when it is fixed, and for a file whose import changed under it; and the protocol's rules
for bad input (a message that is not JSON, an unknown method, a broken frame)."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import FLOW, case, check, main, program, tmp  # noqa: E402
from lsp_client import Client, uri  # noqa: E402

LIB = """// Fetches a pull request.
// Its number is an int.
fn fetch_pr(n) {
  return {number: n}
}
let base = "https://example.test"
"""

MAIN = """import "lib/github.flow" as gh
fn helper(x) {
  let y = x + 1
  return y
}
let pr = gh.fetch_pr(42)
print(helper(1), len(pr), gh.base)
fn call(u) { return http.get(u) }
print("s".upper())
"""


def write_program():
    os.makedirs(tmp("lib"), exist_ok=True)
    return program("lib/github.flow", LIB), program("main.flow", MAIN)


def start():
    c = Client(FLOW, cwd=tmp())
    return c, c.initialize(tmp())


def labels(response):
    return {item["label"] for item in response.get("result") or []}


def hover_text(response):
    result = response.get("result")
    return result["contents"]["value"] if result else ""


@case
def initialize_says_what_the_server_does():
    c, r = start()
    caps = r.get("result", {}).get("capabilities", {})
    check("definition, hover and completion (on `.`) are offered",
          caps.get("definitionProvider") and caps.get("hoverProvider") and
          caps.get("completionProvider", {}).get("triggerCharacters") == ["."], r)
    check("the whole text is sent on each change", caps.get("textDocumentSync", {}).get("change") == 1, r)
    check("shutdown then exit: exit code 0", c.close() == 0)


@case
def open_program_publishes_no_diagnostics():
    lib, main_file = write_program()
    c, _ = start()
    c.open(main_file)
    check("a correct program: an empty list for the main file", c.diagnostics(main_file) == [])
    c.close()


@case
def definition_within_a_file_and_across_an_import():
    lib, main_file = write_program()
    c, _ = start()
    c.open(main_file)
    c.diagnostics(main_file)
    r = c.at("textDocument/definition", main_file, 5, 13)  # gh.fe|tch_pr
    res = r.get("result") or {}
    check("fetch_pr: its declaration in lib/github.flow", res.get("uri") == uri(lib) and
          res["range"]["start"] == {"line": 2, "character": 3} and res["range"]["end"] == {"line": 2, "character": 11}, r)
    r = c.at("textDocument/definition", main_file, 6, 8)  # he|lper(1)
    res = r.get("result") or {}
    check("helper: its declaration above", res.get("uri") == uri(main_file) and
          res["range"]["start"] == {"line": 1, "character": 3}, r)
    r = c.at("textDocument/definition", main_file, 3, 9)  # return y
    res = r.get("result") or {}
    check("a local: its let", res.get("range", {}).get("start") == {"line": 2, "character": 6}, r)
    r = c.at("textDocument/definition", main_file, 2, 10)  # x + 1
    res = r.get("result") or {}
    check("a parameter: the function's parameter list", res.get("range", {}).get("start") == {"line": 1, "character": 10}, r)
    r = c.at("textDocument/definition", main_file, 6, 31)  # gh.ba|se
    res = r.get("result") or {}
    check("an imported let", res.get("uri") == uri(lib) and res["range"]["start"] == {"line": 5, "character": 4}, r)
    r = c.at("textDocument/definition", main_file, 5, 10)  # g|h.fetch_pr
    res = r.get("result") or {}
    check("an import's alias: the file it names", res.get("uri") == uri(lib) and
          res["range"]["start"] == {"line": 0, "character": 0}, r)
    r = c.at("textDocument/definition", main_file, 6, 18)  # len
    check("a builtin has no definition in the program: null", "result" in r and r["result"] is None, r)
    c.close()


@case
def hover_shows_signatures_and_docs():
    lib, main_file = write_program()
    c, _ = start()
    c.open(main_file)
    c.diagnostics(main_file)
    text = hover_text(c.at("textDocument/hover", main_file, 6, 18))  # len
    check("a builtin: its signature and doc line", "len(x)" in text and "code points" in text, text)
    text = hover_text(c.at("textDocument/hover", main_file, 7, 26))  # http.g|et
    check("a module's function", "http.get(url [, opts])" in text and "GET" in text, text)
    text = hover_text(c.at("textDocument/hover", main_file, 5, 14))  # fetch_pr
    check("a function of another file: signature, file and the comment above it",
          "fn fetch_pr(n)" in text and "Fetches a pull request." in text and "Its number is an int." in text
          and "lib/github.flow" in text, text)
    text = hover_text(c.at("textDocument/hover", main_file, 8, 11))  # "s".up|per()
    check("a method: each receiver's signature and doc", "string.upper()" in text and "upper case" in text, text)
    r = c.at("textDocument/hover", main_file, 8, 1)  # pr|int
    check("hover has a range: the name", (r.get("result") or {}).get("range", {}).get("start") == {"line": 8, "character": 0}, r)
    r = c.at("textDocument/hover", main_file, 4, 0)  # `}`
    check("nothing to say: null", "result" in r and r["result"] is None, r)
    c.close()


@case
def completion_of_names_builtins_members_and_methods():
    lib, main_file = write_program()
    c, _ = start()
    c.open(main_file)
    c.diagnostics(main_file)
    c.change(main_file, MAIN + "fn later() {\n  let local_one = 1\n  \n  return local_one\n}\n")
    c.diagnostics(main_file)
    got = labels(c.at("textDocument/completion", main_file, 11, 2))
    check("names in scope, builtins, modules and keywords",
          {"local_one", "helper", "pr", "gh", "print", "http", "let", "retry", "import"} <= got, sorted(got))
    got = labels(c.at("textDocument/completion", main_file, 3, 2))
    check("a local is offered only in its block", "local_one" not in got and "y" in got, sorted(got))
    # While a line is half typed the file does not parse: the names of its last good parse answer.
    c.change(main_file, MAIN + "gh.\nhttp.\n[1, 2].\n", version=3)
    c.diagnostics(main_file)
    got = labels(c.at("textDocument/completion", main_file, 9, 3))
    check("after an import's alias: its top-level names", got == {"fetch_pr", "base"}, got)
    got = labels(c.at("textDocument/completion", main_file, 10, 5))
    check("after a builtin module: its functions", {"get", "post", "request"} <= got and "upper" not in got, got)
    got = labels(c.at("textDocument/completion", main_file, 11, 7))
    check("after any other value: the methods", {"map", "filter", "upper", "keys"} <= got and "_sort" not in got, got)
    c.close()


@case
def diagnostics_for_a_broken_file_then_cleared():
    c, _ = start()
    path = program("broken.flow", "let x = \nprint(undefined_name)\n")
    c.open(path)
    diags = c.diagnostics(path)
    check("a syntax error: severity 1, on its line", len(diags) >= 1 and diags[0]["severity"] == 1
          and diags[0]["source"] == "flow", diags)
    c.change(path, "fn f() {\n  let unused = 1\n  return 2\n}\nprint(undefined_name)\n")
    diags = c.diagnostics(path)
    errors = [d for d in diags if d["severity"] == 1]
    warnings = [d for d in diags if d["severity"] == 2]
    check("an undefined name: an error whose range is the name",
          len(errors) == 1 and "undefined name `undefined_name`" in errors[0]["message"]
          and errors[0]["range"] == {"start": {"line": 4, "character": 6}, "end": {"line": 4, "character": 20}}, diags)
    check("an unused variable: a warning", len(warnings) == 1 and "`unused` is never used" in warnings[0]["message"], diags)
    c.change(path, "print(1)\n", version=3)
    check("fixed: an empty list clears them", c.diagnostics(path) == [])
    c.notify("textDocument/didClose", {"textDocument": {"uri": uri(path)}})
    check("closed: cleared", c.diagnostics(path) == [])
    c.close()


@case
def an_edit_to_an_open_import_rechecks_its_importer():
    lib, main_file = write_program()
    c, _ = start()
    c.open(main_file)
    c.diagnostics(main_file)
    c.open(lib)
    c.sync()
    c.change(lib, LIB.replace("fn fetch_pr(n)", "fn get_pr(n)"))
    check("the edited file itself: no errors", c.diagnostics(lib) == [])
    diags = c.diagnostics(main_file)
    check("its importer: `gh.fetch_pr` is gone, with the editor's text of the import, not the disk's",
          any("no top-level `fetch_pr`" in d["message"] and d["range"]["start"]["line"] == 5 for d in diags), diags)
    c.sync()
    c.change(lib, LIB + "fn broken( {\n", version=3)
    diags = c.diagnostics(lib)
    check("a syntax error in the imported file is reported in it", any(d["severity"] == 1 for d in diags), diags)
    c.close()


@case
def a_missing_import_is_an_error_at_its_line():
    c, _ = start()
    path = program("main.flow", 'print(1)\nimport "nowhere.flow" as n\n')
    c.open(path)
    diags = c.diagnostics(path)
    check("cannot import, on line 2", any("cannot import" in d["message"] and d["range"]["start"]["line"] == 1 for d in diags), diags)
    c.close()


@case
def positions_count_utf16_units():
    c, _ = start()
    # "é" is one UTF-16 unit (two bytes), "😀" two (four bytes): `name` starts at character 19
    # (0-based), where bytes would say 22 and code points 18.
    path = program("u.flow", 'let s = "é😀"; let name = s\nprint(name)\n')
    c.open(path)
    c.diagnostics(path)
    r = c.at("textDocument/definition", path, 1, 7)
    res = r.get("result") or {}
    check("the definition's range is in UTF-16 units", res.get("range", {}).get("start") == {"line": 0, "character": 19}, r)
    c.close()


@case
def bad_input_gets_an_error_and_the_session_goes_on():
    c = Client(FLOW, cwd=tmp())
    r = c.request("textDocument/hover", {"textDocument": {"uri": "file:///x.flow"}, "position": {"line": 0, "character": 0}})
    check("a request before initialize: -32002", r.get("error", {}).get("code") == -32002, r)
    c.initialize(tmp())
    c.send_raw(b"Content-Length: 9\r\n\r\n{not json")
    r = c.wait_for(lambda m: m.get("error") is not None and m.get("id") is None)
    check("a message that is not JSON: -32700, id null", r["error"]["code"] == -32700, r)
    r = c.request("textDocument/formatting", {})
    check("an unknown method: -32601", r.get("error", {}).get("code") == -32601, r)
    r = c.request("textDocument/hover", {"position": {"line": 0}})
    check("missing parameters: -32602", r.get("error", {}).get("code") == -32602, r)
    r = c.at("textDocument/hover", "/not/open.flow", 0, 0)
    check("a file that is not open: null", "result" in r and r["result"] is None, r)
    check("the session goes on: shutdown and exit give 0", c.close() == 0)


@case
def deeply_nested_json_is_refused_and_the_session_goes_on():
    c, _ = start()
    deep = "[" * 100000 + "]" * 100000
    body = ('{"jsonrpc":"2.0","method":"x","params":%s}' % deep).encode()
    c.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    r = c.wait_for(lambda m: m.get("error") is not None and m.get("id") is None)
    check("nesting 100,000 deep: -32700, not a crash", r["error"]["code"] == -32700, r)
    body = ('{"jsonrpc":"2.0","id":%s,"method":"shutdown"}' % ("[" * 300 + "]" * 300)).encode()
    c.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    r = c.wait_for(lambda m: m.get("error") is not None and m.get("id") is None)
    check("an id nested 300 deep: -32700", r["error"]["code"] == -32700, r)
    r = c.request("textDocument/hover", {"textDocument": {"uri": "file:///x.flow"}, "position": {"line": 1.5, "character": -1}})
    check("a position that is not a natural number: -32602", r.get("error", {}).get("code") == -32602, r)
    check("the session goes on", c.close() == 0)


@case
def an_unsaved_buffer_cannot_import():
    c, _ = start()
    os.makedirs(tmp("lib"), exist_ok=True)
    program("lib/m.flow", "fn f() { return 1 }\n")
    c.notify("textDocument/didOpen", {"textDocument": {"uri": "untitled:Untitled-1", "languageId": "flow", "version": 1,
                                                       "text": 'import "lib/m.flow" as m\nprint(m.f())\n'}})
    seen = []
    r = c.wait_for(lambda m: seen.append(m) or (m.get("method") == "textDocument/publishDiagnostics"
                                                and m["params"]["uri"] == "untitled:Untitled-1"))
    diags = r["params"]["diagnostics"]
    check("its import is an error: save it first", any("not a file (save it first)" in d["message"] for d in diags), diags)
    c.sync()
    check("nothing is published for a file resolved against the server's folder",
          not any(m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"].startswith("file://lib")
                  for m in seen), seen)
    c.close()


@case
def closing_or_opening_an_import_rechecks_its_importers():
    os.makedirs(tmp("lib"), exist_ok=True)
    lib = program("lib/m.flow", "fn inc(x) { return x + 1 }\n")
    main_file = program("main.flow", 'import "lib/m.flow" as m\nprint(m.extra())\n')
    c, _ = start()
    c.open(lib, "fn inc(x) { return x + 1 }\nfn extra() { return 2 }\n")  # unsaved
    c.open(main_file)
    check("the importer sees the editor's text of the import", c.diagnostics(main_file) == [])
    c.sync()
    c.notify("textDocument/didClose", {"textDocument": {"uri": uri(lib)}})
    diags = c.diagnostics(main_file)
    check("closed without saving: the importer reads the disk again, where `extra` is not",
          any("no top-level `extra`" in d["message"] for d in diags), diags)
    other = program("other.flow", 'import "new.flow" as n\nprint(n.v)\n')
    c.open(other)
    diags = c.diagnostics(other)
    check("an import of a file that does not exist: an error", any("cannot import" in d["message"] for d in diags), diags)
    c.sync()
    c.open(tmp("new.flow"), "let v = 1\n")
    check("opening that file in the editor clears it", c.diagnostics(other) == [])
    c.close()


@case
def the_second_variable_of_a_for_is_declared_where_it_is_written():
    c, _ = start()
    path = program("for.flow", "let m = {a: 1}\nfor key, val in m { print(key, val) }\n")
    c.open(path)
    c.sync()
    r = c.at("textDocument/definition", path, 1, 32)  # print(key, v|al)
    res = r.get("result") or {}
    check("val: its own name in the for", res.get("range", {}).get("start") == {"line": 1, "character": 9}, r)
    c.close()


@case
def exit_without_shutdown_is_code_1():
    c, _ = start()
    c.notify("exit", None)
    c.proc.stdin.close()
    check("exit without shutdown: 1", c.proc.wait(20) == 1)


@case
def a_broken_frame_ends_the_session_with_a_message():
    c, _ = start()
    c.send_raw(b"Content-Length: lots\r\n\r\n{}")
    c.proc.stdin.close()
    code = c.proc.wait(20)
    err = c.proc.stderr.read().decode()
    check("exit 1, saying why", code == 1 and "Content-Length" in err, (code, err))


if __name__ == "__main__":
    main()
