#include "lsp/analysis.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>

#include <set>

#include "compiler/parse.h"
#include "lsp/docs.h"
#include "lsp/text.h"
#include "vm/bytecode/module.h"

namespace flow::lsp {

namespace {

bool Before(ast::Loc a, ast::Loc b) { return a.line < b.line || (a.line == b.line && a.col < b.col); }

// Is `loc` on the name that starts at `start` and is `length` long (or just after it, where
// an editor's cursor stands after typing it)?
bool Covers(ast::Loc start, uint32_t length, ast::Loc loc) {
  return loc.line == start.line && loc.col >= start.col && loc.col <= start.col + length;
}

// The `//` comment lines right above line `line` (1-based) of `text`, without the slashes.
std::string CommentAbove(std::string_view text, uint32_t line) {
  std::vector<std::string> lines;
  for (uint32_t l = line - 1; l >= 1; --l) {
    std::string_view s = LineOf(text, l - 1);
    size_t start = s.find_first_not_of(" \t");
    if (start == std::string_view::npos || s.substr(start, 2) != "//") break;
    s.remove_prefix(start + 2);
    if (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    lines.emplace_back(s);
  }
  std::string comment;
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) comment += (comment.empty() ? "" : "\n") + *it;
  return comment;
}

// `fn name(a, b)`; `fn(a, b)` without a name.
std::string Signature(const SymbolDecl& d, bool named = true) {
  return fmt::format("fn{}{}({})", named ? " " : "", named ? d.name : "", fmt::join(d.params, ", "));
}

// Where the name (letters, digits, `_`) that ends at `end` of `line` starts.
size_t NameStart(std::string_view line, size_t end) {
  while (end > 0 && (std::isalnum(static_cast<unsigned char>(line[end - 1])) || line[end - 1] == '_')) --end;
  return end;
}

std::string DeclHover(const Analysis& a, const SymbolDecl& d) {
  std::string code;
  switch (d.kind) {
    case SymbolDecl::Kind::kFunction: code = Signature(d); break;
    case SymbolDecl::Kind::kVariable:
      code = d.params.empty() && !d.top_level ? fmt::format("let {}", d.name)
             : d.params.empty()              ? fmt::format("let {}  // top-level", d.name)
                                             : fmt::format("let {} = {}", d.name, Signature(d, /*named=*/false));
      break;
    case SymbolDecl::Kind::kParameter: code = fmt::format("{}  // parameter", d.name); break;
    case SymbolDecl::Kind::kImport:
      code = fmt::format("import \"{}\" as {}", d.import_file >= 0 ? a.files[d.import_file].shown : "?", d.name);
      break;
  }
  std::string text = fmt::format("```flow\n{}\n```", code);
  if (d.file != 0) text += fmt::format("\nin `{}`", a.files[d.file].shown);
  std::string comment = CommentAbove(a.files[d.file].text, d.loc.line);
  if (!comment.empty()) text += "\n\n" + comment;
  return text;
}

}  // namespace

std::unique_ptr<Analysis> Analyze(const std::string& path, const std::string& text, const SourceReader& read,
                                  ParseCache* cache) {
  auto a = std::make_unique<Analysis>();
  a->files.push_back({path, path, text});
  CompileOptions options;
  options.symbols = &a->symbols;
  options.parse_cache = cache;
  Module module;
  auto noting_failures = [&](const std::string& file, std::string* out, std::string* error) {
    if (read(file, out, error)) return true;
    a->unreadable.insert(file);
    return false;
  };
  CompileProgram(&a->files, noting_failures, &module, &a->diags, options);
  a->parsed = a->symbols.filled;
  return a;
}

int DeclAt(const Analysis& a, ast::Loc loc) {
  for (const SymbolUse& u : a.symbols.uses)
    if (u.file == 0 && u.kind == SymbolUse::Kind::kDecl && Covers(u.loc, u.length, loc)) return u.decl;
  for (size_t i = 0; i < a.symbols.decls.size(); ++i) {
    const SymbolDecl& d = a.symbols.decls[i];
    if (d.file == 0 && Covers(d.loc, static_cast<uint32_t>(d.name.size()), loc)) return static_cast<int>(i);
  }
  return -1;
}

const SymbolUse* UseAt(const Analysis& a, ast::Loc loc) {
  for (const SymbolUse& u : a.symbols.uses)
    if (u.file == 0 && Covers(u.loc, u.length, loc)) return &u;
  return nullptr;
}

bool DefinitionAt(const Analysis& a, ast::Loc loc, Place* place) {
  int decl = DeclAt(a, loc);
  if (decl < 0) return false;
  const SymbolDecl& d = a.symbols.decls[decl];
  if (d.kind == SymbolDecl::Kind::kImport && d.import_file >= 0) {
    *place = {static_cast<uint16_t>(d.import_file), {1, 1}, 0};
    return true;
  }
  *place = {d.file, d.loc, static_cast<uint32_t>(d.name.size())};
  return true;
}

std::string HoverAt(const Analysis& a, ast::Loc loc, Place* range) {
  if (const SymbolUse* u = UseAt(a, loc)) {
    *range = {0, u->loc, u->length};
    switch (u->kind) {
      case SymbolUse::Kind::kBuiltin: return BuiltinHover(u->builtin);
      case SymbolUse::Kind::kMethod: return MethodHover(u->method);
      case SymbolUse::Kind::kDecl: return DeclHover(a, a.symbols.decls[u->decl]);
    }
  }
  int decl = DeclAt(a, loc);
  if (decl < 0) return "";
  const SymbolDecl& d = a.symbols.decls[decl];
  *range = {0, d.loc, static_cast<uint32_t>(d.name.size())};
  return DeclHover(a, d);
}

std::vector<Completion> CompletionsAt(const Analysis& a, ast::Loc loc, std::string_view line) {
  // `line` is the text before the cursor.
  std::vector<Completion> items;
  std::set<std::string> seen;
  auto add = [&](Completion c) {
    if (seen.insert(c.label).second) items.push_back(std::move(c));
  };
  // The text before the cursor: `qualifier.partial` or `partial`.
  const size_t start = NameStart(line, line.size());
  if (start > 0 && line[start - 1] == '.') {
    const size_t q_end = start - 1, q_start = NameStart(line, q_end);
    const std::string qualifier(line.substr(q_start, q_end - q_start));
    // A builtin module: its functions.
    for (const BuiltinDoc& b : BuiltinDocs()) {
      std::string_view name = b.name;
      if (name.size() > qualifier.size() && name.substr(0, qualifier.size()) == qualifier && name[qualifier.size()] == '.')
        add({std::string(name.substr(qualifier.size() + 1)), Completion::Kind::kFunction, b.signature, b.doc});
    }
    if (!items.empty()) return items;
    // An imported file: its top-level names.
    for (const SymbolDecl& d : a.symbols.decls) {
      if (d.file != 0 || d.kind != SymbolDecl::Kind::kImport || d.name != qualifier || d.import_file < 0) continue;
      for (const SymbolDecl& member : a.symbols.decls)
        if (member.file == d.import_file && member.top_level && member.kind != SymbolDecl::Kind::kImport)
          add({member.name, member.kind == SymbolDecl::Kind::kFunction ? Completion::Kind::kFunction : Completion::Kind::kVariable,
               member.kind == SymbolDecl::Kind::kFunction ? Signature(member) : "", CommentAbove(a.files[member.file].text, member.loc.line)});
      return items;
    }
    // Anything else may be a string, list, map or task: their methods.
    for (const MethodDoc& m : MethodDocs())
      if (m.name[0] != '_')
        add({m.name, Completion::Kind::kMethod, fmt::format("{}.{}", ReceiverName(m.receiver), m.signature), m.doc});
    return items;
  }
  // The names in scope here: this file's top-level names, and the locals whose block holds `loc`.
  for (const SymbolDecl& d : a.symbols.decls) {
    if (d.file != 0) continue;
    if (!d.top_level && (Before(loc, d.loc) || (d.scope_end.line != 0 && Before(d.scope_end, loc)))) continue;
    Completion::Kind kind = d.kind == SymbolDecl::Kind::kFunction ? Completion::Kind::kFunction
                            : d.kind == SymbolDecl::Kind::kImport ? Completion::Kind::kModule
                                                                  : Completion::Kind::kVariable;
    add({d.name, kind, d.kind == SymbolDecl::Kind::kFunction ? Signature(d) : "", ""});
  }
  for (const BuiltinDoc& b : BuiltinDocs()) {
    std::string_view name = b.name;
    size_t dot = name.find('.');
    if (dot == std::string_view::npos)
      add({b.name, Completion::Kind::kFunction, b.signature, b.doc});
    else
      add({std::string(name.substr(0, dot)), Completion::Kind::kModule, "", "a builtin module"});
  }
  add({"args", Completion::Kind::kVariable, "args", "the program's arguments (flow run --arg NAME=VALUE)"});
  static const std::vector<std::string> kKeywords = Keywords();  // a lexer made once, not per request
  for (const std::string& word : kKeywords) add({word, Completion::Kind::kKeyword, "", ""});
  return items;
}

}  // namespace flow::lsp
