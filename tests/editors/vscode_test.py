#!/usr/bin/env python3
"""editors/vscode (issue 13 point 6): the extension's manifest, language configuration and
TextMate grammar are valid JSON; every pattern of the grammar compiles; every word the
language reserves (as flow lsp completes them: the lexer's keywords and import/as/test/
limit) is highlighted; and the grammar's patterns give the expected scopes to a sample."""
import json, os, re, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lsp"))
from testlib import FLOW, ROOT, case, check, main, program, tmp  # noqa: E402
from lsp_client import Client  # noqa: E402

VSCODE = os.path.join(ROOT, "editors", "vscode")


def load(*parts):
    with open(os.path.join(VSCODE, *parts)) as f:
        return json.load(f)


def patterns(node):
    """Every (name, regex) of a grammar, begin/end included."""
    if isinstance(node, dict):
        for key in ("match", "begin", "end"):
            if key in node:
                yield node.get("name", ""), node[key]
        for value in node.values():
            yield from patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from patterns(value)


def scope_of(grammar, text):
    """The name of the first `match` pattern of the grammar whose regex matches all of text
    (captures count with their own names): a rough stand-in for an editor's tokenizer."""
    def walk(node):
        if isinstance(node, dict):
            if "match" in node and re.fullmatch(node["match"], text):
                caps = node.get("captures", {})
                return node.get("name") or (caps.get("1", {}).get("name") if caps else None)
            for value in node.values():
                found = walk(value)
                if found:
                    return found
        elif isinstance(node, list):
            for value in node:
                found = walk(value)
                if found:
                    return found
        return None
    return walk(grammar["repository"])


KEYWORD_SCOPES = ("keyword.", "storage.type", "constant.language.")


def highlighted_as_keyword(grammar, word):
    """Does a pattern with a keyword's scope take `word` itself, where it may stand: alone,
    before a name, before a string, before a name and a parenthesis?"""
    def keyword_nodes(node):
        if isinstance(node, dict):
            if "match" in node:
                yield node
            for value in node.values():
                yield from keyword_nodes(value)
        elif isinstance(node, list):
            for value in node:
                yield from keyword_nodes(value)
    for text in (word, f"{word} name", f'{word} "a" as b', f"{word} name (", f'import "a" {word} b'):
        for node in keyword_nodes(grammar["repository"]):
            m = re.match(node["match"], text)
            if not m:
                continue
            if node.get("name", "").startswith(KEYWORD_SCOPES) and m.group(0) == word:
                return True
            for index, capture in node.get("captures", {}).items():
                if capture["name"].startswith(KEYWORD_SCOPES) and m.group(int(index)) == word:
                    return True
    return False


@case
def manifest_and_configuration_are_valid():
    pkg = load("package.json")
    lang = pkg["contributes"]["languages"][0]
    check("the language is flow, for .flow files", lang["id"] == "flow" and lang["extensions"] == [".flow"], lang)
    grammar_entry = pkg["contributes"]["grammars"][0]
    check("the grammar's file exists", os.path.exists(os.path.join(VSCODE, grammar_entry["path"])), grammar_entry)
    conf = load("language-configuration.json")
    check("comments: // and /* */", conf["comments"] == {"lineComment": "//", "blockComment": ["/*", "*/"]}, conf)
    check("brackets: {} [] ()", conf["brackets"] == [["{", "}"], ["[", "]"], ["(", ")"]], conf)
    with open(os.path.join(VSCODE, "extension.js")) as f:
        js = f.read()
    check("the extension starts `flow lsp`", 'args: ["lsp"]' in js, js[:200])


@case
def every_pattern_compiles():
    grammar = load("syntaxes", "flow.tmLanguage.json")
    bad = []
    for name, regex in patterns(grammar):
        try:
            re.compile(regex)
        except re.error as e:
            bad.append((name, regex, str(e)))
    check("every regex compiles", not bad, bad)
    check("scopeName source.flow", grammar["scopeName"] == "source.flow")


@case
def every_reserved_word_is_highlighted():
    c = Client(FLOW, cwd=tmp())
    c.initialize(tmp())
    path = program("empty.flow", "")
    c.open(path)
    c.sync()
    items = c.at("textDocument/completion", path, 0, 0)["result"]
    c.close()
    keywords = {i["label"] for i in items if i["kind"] == 14}
    check("flow lsp completes the keywords", {"let", "fn", "retry", "import", "test"} <= keywords, keywords)
    grammar = load("syntaxes", "flow.tmLanguage.json")
    missing = [k for k in sorted(keywords) if not highlighted_as_keyword(grammar, k)]
    check("each keyword is matched by a pattern", not missing, missing)


@case
def sample_tokens_get_their_scopes():
    grammar = load("syntaxes", "flow.tmLanguage.json")
    want = {
        "// a comment": "comment.line.double-slash.flow",
        "retry": "keyword.control.resilience.flow",
        "finally": "keyword.control.flow",
        "null": "constant.language.null.flow",
        "30s": "constant.numeric.duration.flow",
        "1_000": "constant.numeric.integer.flow",
        "2.5e3": "constant.numeric.float.flow",
        "??": "keyword.operator.coalesce.flow",
        "+=": "keyword.operator.assignment.compound.flow",
        "\\u{1F600}": "constant.character.escape.flow",
        "fn fetch": "storage.type.function.flow",
        "http.get": "support.module.flow",
    }
    got = {text: scope_of(grammar, text) for text in want}
    check("each sample's scope", got == want, {k: v for k, v in got.items() if want[k] != v})


if __name__ == "__main__":
    main()
