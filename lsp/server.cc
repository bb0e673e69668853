#include "lsp/server.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <memory>

#include "lsp/analysis.h"
#include "lsp/text.h"
#include "lsp/transport.h"
#include "runtime/program_file.h"

namespace flow::lsp {

namespace {

using nlohmann::json;

// JSON-RPC error codes (the LSP specification's, "Response Message").
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kServerNotInitialized = -32002;

// CompletionItemKind and DiagnosticSeverity values of the specification.
int CompletionKindOf(Completion::Kind kind) {
  switch (kind) {
    case Completion::Kind::kMethod: return 2;
    case Completion::Kind::kFunction: return 3;
    case Completion::Kind::kVariable: return 6;
    case Completion::Kind::kModule: return 9;
    case Completion::Kind::kKeyword: return 14;
  }
  return 1;
}

// A request's parameters are not what the method takes.
struct BadParams : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Document {
  std::string path;  // absolute; "" for a URI that is not a file's (an unsaved buffer)
  std::string text;
  std::shared_ptr<const Analysis> analysis;
  std::shared_ptr<const Analysis> last_parsed;  // the last analysis whose files all parsed: names for a half-typed edit
};

json ToJson(Position p) { return {{"line", p.line}, {"character", p.character}}; }

uint32_t Uint(const json& v, const char* what) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX) throw BadParams(std::string(what) + " is not a number from 0 to 2^32-1");
  return static_cast<uint32_t>(v.get<uint64_t>());
}

Position PositionOf(const json& p) { return {Uint(p.at("line"), "a line"), Uint(p.at("character"), "a character")}; }

json RangeOf(std::string_view text, ast::Loc loc, uint32_t length) {
  ast::Loc end = loc;
  end.col += length;
  return {{"start", ToJson(ToPosition(text, loc))}, {"end", ToJson(ToPosition(text, end))}};
}

class Server {
 public:
  explicit Server(std::ostream& out) : out_(out) {}

  bool shutdown_requested() const { return shutdown_; }

  // Handles one message; false once `exit` has come.
  bool Handle(const json& message) {
    const bool is_request = message.contains("id");
    // An id is a number or a string (JSON-RPC); anything else is answered with null.
    static const json kNoId;
    const json& given_id = is_request ? message.at("id") : kNoId;
    const json& id = given_id.is_number() || given_id.is_string() ? given_id : kNoId;
    if (!message.is_object() || !message.contains("method") || !message["method"].is_string()) {
      if (is_request) ReplyError(id, kInvalidRequest, "a request names its method");
      return true;  // a response to us, or junk: nothing to answer
    }
    const std::string method = message["method"];
    static const json kNoParams = json::object();
    const json& params = message.contains("params") ? message.at("params") : kNoParams;
    if (method == "exit") return false;
    try {
      if (!initialized_ && method != "initialize") {
        if (is_request) ReplyError(id, kServerNotInitialized, "the first request must be `initialize`");
        return true;
      }
      if (shutdown_ && is_request) {
        ReplyError(id, kInvalidRequest, "the server is shutting down");
        return true;
      }
      if (is_request) {
        json result;
        if (!Request(method, params, &result)) {
          ReplyError(id, kMethodNotFound, "flow lsp does not implement " + method);
          return true;
        }
        Send({{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
      } else {
        Notification(method, params);
      }
    } catch (const json::exception& e) {
      if (is_request) ReplyError(id, kInvalidParams, std::string("bad parameters: ") + e.what());
    } catch (const BadParams& e) {
      if (is_request) ReplyError(id, kInvalidParams, e.what());
    }
    return true;
  }

  void ReplyError(const json& id, int code, const std::string& message) {
    Send({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
  }

 private:
  bool Request(const std::string& method, const json& params, json* result) {
    if (method == "initialize") {
      initialized_ = true;
      *result = {
          {"capabilities",
           {{"textDocumentSync", {{"openClose", true}, {"change", 1}}},  // 1: the whole text on each change
            {"definitionProvider", true},
            {"hoverProvider", true},
            {"completionProvider", {{"triggerCharacters", {"."}}}}}},
          {"serverInfo", {{"name", "flow"}}}};
    } else if (method == "shutdown") {
      shutdown_ = true;
      *result = nullptr;
    } else if (method == "textDocument/definition") {
      *result = Definition(params);
    } else if (method == "textDocument/hover") {
      *result = Hover(params);
    } else if (method == "textDocument/completion") {
      *result = Complete(params);
    } else {
      return false;
    }
    return true;
  }

  void Notification(const std::string& method, const json& params) {
    if (method == "textDocument/didOpen") {
      const json& doc = params.at("textDocument");
      const std::string uri = doc.at("uri");
      std::string text = doc.at("text");
      Document& d = docs_[uri];
      d.path = PathFromUri(uri);
      d.text = std::move(text);
      Refresh(uri);
    } else if (method == "textDocument/didChange") {
      const std::string uri = params.at("textDocument").at("uri");
      auto it = docs_.find(uri);
      if (it == docs_.end()) return;
      // All the changes or none: a bad one leaves the text as it was.
      std::string text = it->second.text;
      for (const json& change : params.at("contentChanges")) {
        if (!change.contains("range")) {
          text = change.at("text");
          continue;
        }
        const json& range = change.at("range");
        size_t from = ByteOffset(text, PositionOf(range.at("start")));
        size_t to = ByteOffset(text, PositionOf(range.at("end")));
        if (to < from) throw BadParams("a change's range ends before it starts");
        text.replace(from, to - from, change.at("text").get<std::string>());
      }
      it->second.text = std::move(text);
      Refresh(uri);
    } else if (method == "textDocument/didClose") {
      const std::string uri = params.at("textDocument").at("uri");
      auto it = docs_.find(uri);
      if (it == docs_.end()) return;
      const std::string path = it->second.path;
      std::shared_ptr<const Analysis> closed = it->second.analysis;
      docs_.erase(it);
      Publish(uri, json::array());
      // Its importers now read the file from disk; and what it said of the files it imports
      // is taken back, unless they are open or another open file imports them.
      RecheckImportersOf(path, uri);
      if (closed)
        for (size_t i = 1; i < closed->files.size(); ++i)
          if (!IsOpen(closed->files[i].name) && !AnyImports(closed->files[i].name))
            Publish(UriOf(closed->files[i].name), json::array());
    }
    // Others (initialized, didSave, $/cancelRequest, workspace/*) need nothing.
  }

  // Compiles an open file again and publishes its diagnostics (and those of the files it
  // imports); then the same for the other open files that import it, which may now be
  // right or wrong.
  void Refresh(const std::string& uri) {
    Document& doc = docs_.at(uri);
    Analyze(uri, &doc);
    RecheckImportersOf(doc.path, uri);
  }

  // Does an open document's program read the file at `path`, or fail to?
  static bool Reads(const Analysis& a, const std::string& path) {
    return a.unreadable.count(path) ||
           std::any_of(a.files.begin() + 1, a.files.end(), [&](const SourceFile& f) { return f.name == path; });
  }

  void RecheckImportersOf(const std::string& path, const std::string& except_uri) {
    if (path.empty()) return;
    for (auto& [other_uri, other] : docs_)
      if (other_uri != except_uri && other.analysis && Reads(*other.analysis, path)) Analyze(other_uri, &other);
  }

  // The open document of the file at `path` (its URI and itself), or docs_.end().
  std::map<std::string, Document>::const_iterator OpenAt(const std::string& path) const {
    return std::find_if(docs_.begin(), docs_.end(), [&](const auto& d) { return !path.empty() && d.second.path == path; });
  }
  bool IsOpen(const std::string& path) const { return OpenAt(path) != docs_.end(); }
  bool AnyImports(const std::string& path) const {
    return std::any_of(docs_.begin(), docs_.end(),
                       [&](const auto& d) { return d.second.analysis && Reads(*d.second.analysis, path); });
  }

  // The URI of a file of a program: the editor's own for an open one, else file://PATH.
  std::string UriOf(const std::string& path) const {
    auto open = OpenAt(path);
    return open != docs_.end() ? open->first : UriFromPath(path);
  }

  void Analyze(const std::string& uri, Document* doc) {
    auto read = [this](const std::string& path, std::string* text, std::string* error) {
      auto open = OpenAt(path);
      if (open == docs_.end()) return runtime::ReadFile(path, text, error, runtime::kMaxProgramBytes);
      *text = open->second.text;
      return true;
    };
    // A document that is not a file (an unsaved buffer) has no folder to import from.
    auto no_files = [](const std::string&, std::string*, std::string* error) {
      *error = "this document is not a file (save it first)";
      return false;
    };
    if (doc->path.empty())
      doc->analysis = lsp::Analyze(uri, doc->text, no_files, nullptr);
    else
      doc->analysis = lsp::Analyze(doc->path, doc->text, read, &cache_);
    const Analysis& a = *doc->analysis;
    std::vector<json> by_file(a.files.size(), json::array());
    for (const Diagnostic& d : a.diags.Sorted()) {
      if (d.file >= a.files.size()) continue;
      const std::string& text = a.files[d.file].text;
      by_file[d.file].push_back({{"range", RangeOf(text, d.loc, WordLength(text, d.loc))},
                                 {"severity", d.severity == Severity::kError ? 1 : 2},
                                 {"source", "flow"},
                                 {"message", d.message}});
    }
    Publish(uri, by_file[0]);
    for (size_t i = 1; i < a.files.size(); ++i) Publish(UriOf(a.files[i].name), by_file[i]);
    if (a.parsed) doc->last_parsed = doc->analysis;
  }

  void Publish(const std::string& uri, json diagnostics) {
    if (uri.empty()) return;
    Send({{"jsonrpc", "2.0"},
          {"method", "textDocument/publishDiagnostics"},
          {"params", {{"uri", uri}, {"diagnostics", std::move(diagnostics)}}}});
  }

  // The open document a request names, with the compiler location of its position.
  // The names of the last analysis in which every file parsed answer it: while a line is
  // half typed, the names around it are still known.
  const Analysis* Locate(const json& params, ast::Loc* loc, const Document** doc_out = nullptr) {
    const std::string uri = params.at("textDocument").at("uri");
    const Position position = PositionOf(params.at("position"));
    auto it = docs_.find(uri);
    if (it == docs_.end()) return nullptr;
    const Document& doc = it->second;
    *loc = ToLoc(doc.text, position);
    if (doc_out) *doc_out = &doc;
    return doc.analysis && doc.analysis->parsed ? doc.analysis.get() : doc.last_parsed.get();
  }

  json Definition(const json& params) {
    ast::Loc loc;
    const Analysis* a = Locate(params, &loc);
    Place place;
    if (!a || !DefinitionAt(*a, loc, &place)) return nullptr;
    const SourceFile& file = a->files[place.file];
    return {{"uri", place.file == 0 ? params.at("textDocument").at("uri").get<std::string>() : UriOf(file.name)},
            {"range", RangeOf(file.text, place.loc, place.length)}};
  }

  json Hover(const json& params) {
    ast::Loc loc;
    const Analysis* a = Locate(params, &loc);
    Place range;
    std::string text = a ? HoverAt(*a, loc, &range) : "";
    if (text.empty()) return nullptr;
    return {{"contents", {{"kind", "markdown"}, {"value", text}}}, {"range", RangeOf(a->files[0].text, range.loc, range.length)}};
  }

  json Complete(const json& params) {
    ast::Loc loc;
    const Document* doc = nullptr;
    const Analysis* a = Locate(params, &loc, &doc);
    json items = json::array();
    if (!doc) return items;
    static const Analysis kEmpty;
    const Position position = PositionOf(params.at("position"));
    const size_t line_start = ByteOffset(doc->text, {position.line, 0}), at = ByteOffset(doc->text, position);
    const std::string_view before = std::string_view(doc->text).substr(line_start, at - line_start);
    for (const Completion& c : CompletionsAt(a ? *a : kEmpty, loc, before)) {
      json item = {{"label", c.label}, {"kind", CompletionKindOf(c.kind)}};
      if (!c.detail.empty()) item["detail"] = c.detail;
      if (!c.doc.empty()) item["documentation"] = c.doc;
      items.push_back(std::move(item));
    }
    return items;
  }

  void Send(const json& message) { WriteMessage(out_, message.dump(-1, ' ', false, json::error_handler_t::replace)); }

  std::ostream& out_;
  bool initialized_ = false;
  bool shutdown_ = false;
  std::map<std::string, Document> docs_;  // open documents, by URI
  ParseCache cache_;
};

// JSON nested deeper than any message of the protocol: refused before it is parsed, since
// copying or printing such a value recurses once per level.
constexpr int kMaxJsonDepth = 256;
bool TooDeep(std::string_view body) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

ServeResult Serve(std::istream& in, std::ostream& out) {
  Server server(out);
  ServeResult result;
  std::string body;
  while (true) {
    switch (ReadMessage(in, &body, &result.error)) {
      case ReadResult::kEnd: result.shutdown_requested = server.shutdown_requested(); return result;
      case ReadResult::kBadFrame: result.shutdown_requested = server.shutdown_requested(); return result;
      case ReadResult::kMessage: break;
    }
    json message = TooDeep(body) ? json(json::value_t::discarded) : json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (message.is_discarded()) {
      server.ReplyError(nullptr, kParseError, "a message that is not JSON");
      continue;
    }
    if (!server.Handle(message)) {
      result.shutdown_requested = server.shutdown_requested();
      return result;
    }
  }
}

}  // namespace flow::lsp
