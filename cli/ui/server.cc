#include "cli/ui/server.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/exit_codes.h"
#include "cli/ui/embedded.h"
#include "cli/ui/http_loader.h"
#include "store/pg/connection.h"
#include "runtime/program_file.h"

namespace flow::ui {

namespace {

// Every response: no sniffing, no framing, no referrer (a ?token= must not leak), and a
// policy that runs only this server's scripts: a name that smuggles markup stays text.
void AddSecurityHeaders(HttpResponse* r) {
  r->headers.emplace_back("Content-Security-Policy",
                          "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                          "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("X-Frame-Options", "DENY");
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
  r->headers.emplace_back("Cache-Control", "no-store");
}

std::string ContentType(std::string_view name) {
  auto ends = [&](std::string_view s) { return name.size() >= s.size() && name.substr(name.size() - s.size()) == s; };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  unsigned diff = a.size() != b.size();
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string Header(const HttpRequest& r, const char* name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

std::map<std::string, std::string> ParseQuery(std::string_view target, bool* ok) {
  std::map<std::string, std::string> out;
  *ok = true;
  size_t q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string key, value;
    if (!DecodeQueryComponent(pair.substr(0, eq), &key) ||
        (eq != std::string_view::npos && !DecodeQueryComponent(pair.substr(eq + 1), &value)))
      *ok = false;
    out[key] = value;
  }
  return out;
}

std::string CookieValue(const HttpRequest& r, std::string_view name) {
  std::string_view cookies = r.headers.count("cookie") ? std::string_view(r.headers.at("cookie")) : "";
  while (!cookies.empty()) {
    size_t semi = cookies.find(';');
    std::string_view c = cookies.substr(0, semi);
    cookies = semi == std::string_view::npos ? std::string_view() : cookies.substr(semi + 1);
    while (!c.empty() && c.front() == ' ') c.remove_prefix(1);
    if (c.size() > name.size() && c.substr(0, name.size()) == name && c[name.size()] == '=')
      return std::string(c.substr(name.size() + 1));
  }
  return "";
}

// `path` as a redirect target on this server: percent-encoded but for plain characters,
// and never `//host` (a redirect to another site) nor a header broken by a line end.
std::string SafeLocation(const std::string& path) {
  std::string out = "/";
  size_t start = path.find_first_not_of('/');
  for (size_t i = start == std::string::npos ? path.size() : start; i < path.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(path[i]);
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

}  // namespace

bool IsLoopback(const std::string& address) {
  return address == "localhost" || address == "::1" || address.rfind("127.", 0) == 0;
}

bool DecodeQueryComponent(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out->push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size()) return false;
      auto hex = [](char h) {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out->push_back(c);
    }
  }
  return true;
}

// Bound to loopback, the server answers only requests addressed to it by a loopback name:
// a page of another site that rebinds its own name to 127.0.0.1 is refused.
bool UiServer::HostAllowed(const HttpRequest& request) const {
  if (!IsLoopback(options_.bind)) return true;  // a token guards it
  std::string host = Header(request, "host");
  std::string port = ":" + std::to_string(port_);
  for (const char* name : {"127.0.0.1", "localhost", "[::1]"})
    if (host == name + port || host == name) return true;
  return host.rfind("127.", 0) == 0 && host.size() > port.size() && host.substr(host.size() - port.size()) == port;
}

bool UiServer::Authorized(const HttpRequest& request) const {
  if (options_.token.empty()) return true;
  std::string auth = Header(request, "authorization");
  if (auth.rfind("Bearer ", 0) == 0 && ConstantTimeEqual(auth.substr(7), options_.token)) return true;
  return ConstantTimeEqual(CookieValue(request, kTokenCookie), options_.token);
}

// A POST must come from this server's own pages (or a script that sends no browser
// headers): the browser's Sec-Fetch-Site and Origin say where a request comes from.
bool UiServer::SameOrigin(const HttpRequest& request, std::string* why) const {
  std::string site = Header(request, "sec-fetch-site");
  if (!site.empty() && site != "same-origin" && site != "none") {
    *why = "a cross-site request (Sec-Fetch-Site: " + site + ")";
    return false;
  }
  std::string origin = Header(request, "origin");
  if (!origin.empty() && origin != "http://" + Header(request, "host")) {
    *why = "a request from another origin (" + origin + ")";
    return false;
  }
  // A form of another site can post text/plain or form data without asking first; only
  // a script of this origin can send a JSON body.
  std::string type = Header(request, "content-type");
  if (type.rfind("application/json", 0) != 0) {
    *why = "a POST without a JSON body (Content-Type: application/json)";
    return false;
  }
  return true;
}

HttpResponse UiServer::Page(const std::string& path) const {
  std::string name;
  if (path == "/" || path == "/runs" || path == "/runs/")
    name = "assets/runs.html";
  else if (path.rfind("/runs/", 0) == 0 && path.find('/', 6) == std::string::npos)
    name = "assets/run.html";
  else if (path.rfind("/assets/", 0) == 0)
    name = path.substr(1);
  const EmbeddedFile* file = name.empty() ? nullptr : FindEmbeddedFile(name);
  if (!file) return Text(404, "not found\n");
  HttpResponse r;
  r.content_type = ContentType(name);
  r.body.assign(reinterpret_cast<const char*>(file->bytes), file->size);
  return r;
}

HttpResponse UiServer::Handle(const HttpRequest& request) {
  HttpResponse r;
  const bool api = request.path.rfind("/api/", 0) == 0;
  bool query_ok = true;
  std::map<std::string, std::string> query = ParseQuery(request.target, &query_ok);
  if (!HostAllowed(request)) {
    r = Text(421, "this server answers only to 127.0.0.1, localhost or [::1]\n");
  } else if (!options_.token.empty() && request.method == "GET" && !api && query.count("token")) {
    // The first visit with ?token=: a cookie for the next requests, then the same page
    // without the token in its address (or its history entry).
    if (!ConstantTimeEqual(query["token"], options_.token)) {
      r = Text(401, "wrong token\n");
    } else {
      r.status = 303;
      r.content_type = "text/plain; charset=utf-8";
      r.headers.emplace_back("Set-Cookie", fmt::format("{}={}; Path=/; HttpOnly; SameSite=Strict", kTokenCookie,
                                                       options_.token));
      r.headers.emplace_back("Location", SafeLocation(request.path));
    }
  } else if (!Authorized(request)) {
    r = api ? JsonError(401, "this server needs its token: Authorization: Bearer TOKEN, or open the page once with ?token=TOKEN")
            : Text(401, "this server needs its token: open it once with ?token=TOKEN\n");
  } else if (request.method != "GET" && request.method != "HEAD" && request.method != "POST") {
    r = api ? JsonError(405, request.method + " is not allowed") : Text(405, "method not allowed\n");
  } else if (request.method == "POST" && !SameOrigin(request, &r.body)) {
    r = JsonError(403, "refused: " + r.body);
  } else if (api) {
    if (!query_ok) {
      r = JsonError(400, "a malformed query string");
    } else {
      ApiRequest a{request.method, request.path, std::move(query), request.body};
      r = api_->Handle(a);
    }
  } else if (request.method != "GET" && request.method != "HEAD") {
    r = Text(405, "method not allowed\n");
  } else {
    r = Page(request.path);
  }
  AddSecurityHeaders(&r);
  return r;
}

namespace {

struct ServeContext {
  UiServer* server;
  std::string url;
};

void HandleRequest(void* context, const FlowHttpRequest* in, void* reply, FlowHttpRespond respond) {
  auto* ctx = static_cast<ServeContext*>(context);
  HttpResponse r;
  try {
    HttpRequest request;
    request.method = in->method;
    request.target = in->target;
    request.path = in->path;
    request.body.assign(in->body, in->body_size);
    std::string_view headers(in->headers, in->headers_size);
    while (!headers.empty()) {
      size_t end = headers.find('\n');
      std::string_view line = headers.substr(0, end);
      headers = end == std::string_view::npos ? std::string_view() : headers.substr(end + 1);
      size_t colon = line.find(": ");
      if (colon != std::string_view::npos) request.headers[std::string(line.substr(0, colon))] = line.substr(colon + 2);
    }
    r = ctx->server->Handle(request);
  } catch (const std::exception& e) {
    r = JsonError(500, std::string("internal error: ") + e.what());
  }
  std::string headers = "Content-Type: " + r.content_type + "\n";
  for (const auto& [name, value] : r.headers) headers += name + ": " + value + "\n";
  respond(reply, r.status, headers.data(), headers.size(), r.body.data(), r.body.size());
}

void Listening(void* context, int port) {
  auto* ctx = static_cast<ServeContext*>(context);
  ctx->server->set_port(port);
  fmt::print(stderr, "flow ui: serving {}:{}/\n", ctx->url, port);
}

std::string SelfPath() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "/proc/self/exe" : self.string();
}

}  // namespace

int UiCommand(UiOptions options) {
  if (options.token.empty()) {
    const char* env = std::getenv(kTokenEnv);
    if (env) options.token = env;
  }
  if (!IsLoopback(options.bind) && options.token.empty()) {
    fmt::print(stderr,
               "flow ui: binding {} exposes the store beyond this machine; give a token with --token or {} (at least "
               "{} characters)\n",
               options.bind, kTokenEnv, kMinTokenLength);
    return kExitUsage;
  }
  if (!options.token.empty() && options.token.size() < kMinTokenLength) {
    fmt::print(stderr, "flow ui: the token must be at least {} characters\n", kMinTokenLength);
    return kExitUsage;
  }
  for (char c : options.token) {
    if (c <= ' ' || c == ';' || c == ',' || c == '"' || c == '\\' || c == 0x7f) {
      fmt::print(stderr, "flow ui: the token must be printable, without spaces, quotes, ';', ',' or '\\'\n");
      return kExitUsage;
    }
  }
  if (options.port < 0 || options.port > 65535) {
    fmt::print(stderr, "flow ui: --port must be 0 to 65535\n");
    return kExitUsage;
  }
  if (!store::pg::IsPostgresAddress(options.store)) options.store = runtime::AbsolutePath(options.store);
  std::string error;
  FlowHttpServe serve = LoadHttpAdapter(&error);
  if (!serve) {
    fmt::print(stderr, "flow ui: {}\n", error);
    return kExitUsage;
  }
  Actions actions(SelfPath());
  Api api(options.store, &actions, kTokenEnv);
  UiServer server(options, &api);
  std::string host = options.bind.find(':') != std::string::npos ? "[" + options.bind + "]" : options.bind;
  ServeContext context{&server, "http://" + host};
  fmt::print(stderr, "flow ui: store {}{}\n", options.store,
             options.token.empty() ? "" : "; open the page once with ?token=TOKEN (or send Authorization: Bearer TOKEN)");
  char message[512] = {0};
  serve(options.bind.c_str(), options.port, 1 << 20, HandleRequest, Listening, &context, message, sizeof message);
  fmt::print(stderr, "flow ui: {}\n", message);
  return kExitUsage;
}

}  // namespace flow::ui
