// http.get / http.post on libcurl. The response is {status, headers, body}. A non-2xx
// status raises kind `http` (data: status, headers, body, and retry_after_ms for a 429 or
// 503 with Retry-After) unless {check: false}; a failed
// connection raises `http` with data.reason (url, dns, connect, tls, reset, protocol, redirects,
// too_large, other); a timeout raises `timeout`. The idempotency key goes out as `Idempotency-Key`.
// The body is capped in the write callback (default 16 MiB, option max_bytes), because
// libcurl 7.88 does not stop a running transfer at CURLOPT_MAXFILESIZE.
#include <curl/curl.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <memory>

#include "stdlib/natives.h"
#include "stdlib/secrets.h"
#include "vm/value_ops.h"

namespace flow::stdlib {

namespace {

// libcurl is loaded on the first request, not at start-up: with its TLS and protocol
// libraries it costs a few milliseconds of dynamic linking that every `flow` command
// would otherwise pay. The headers still come from libcurl4-openssl-dev.
struct CurlApi {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_reset) easy_reset;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

const CurlApi* Curl(std::string* error) {
  static std::string load_error;
  static const CurlApi* api = []() -> const CurlApi* {
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      load_error = std::string("cannot load libcurl: ") + dlerror();
      return nullptr;
    }
    static CurlApi a;
    bool ok = true;
    auto bind = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      ok = ok && fn != nullptr;
    };
    bind(a.global_init, "curl_global_init");
    bind(a.easy_init, "curl_easy_init");
    bind(a.easy_cleanup, "curl_easy_cleanup");
    bind(a.easy_reset, "curl_easy_reset");
    bind(a.easy_setopt, "curl_easy_setopt");
    bind(a.easy_perform, "curl_easy_perform");
    bind(a.easy_getinfo, "curl_easy_getinfo");
    bind(a.easy_strerror, "curl_easy_strerror");
    bind(a.slist_append, "curl_slist_append");
    bind(a.slist_free_all, "curl_slist_free_all");
    if (!ok || a.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      load_error = "libcurl failed to initialize";
      return nullptr;
    }
    return &a;
  }();
  if (!api) *error = load_error;
  return api;
}

constexpr int64_t kDefaultMaxBytes = 16 << 20;
constexpr int64_t kDefaultTimeoutMs = 30'000;
constexpr size_t kErrorBodyCap = 4096;

struct Transfer {
  std::string body;
  int64_t max_bytes = kDefaultMaxBytes;
  bool too_large = false;
  std::vector<std::pair<std::string, std::string>> headers;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t bytes = size * n;
  if (static_cast<int64_t>(t->body.size() + bytes) > t->max_bytes) {
    t->too_large = true;
    return 0;  // makes libcurl abort the transfer
  }
  t->body.append(data, bytes);
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) t->headers.clear();  // a new response (after a redirect)
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    size_t b = value.find_first_not_of(" \t");
    size_t e = value.find_last_not_of(" \t\r\n");
    t->headers.emplace_back(name, b == std::string::npos ? "" : value.substr(b, e - b + 1));
  }
  return size * n;
}

// data.reason of a failed transfer (docs/language.md lists them).
const char* Reason(CURLcode code) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL: case CURLE_URL_MALFORMAT: return "url";
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY: return "dns";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED: case CURLE_USE_SSL_FAILED: case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_ISSUER_ERROR: case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS: case CURLE_SSL_CLIENTCERT: return "tls";
    case CURLE_TOO_MANY_REDIRECTS: return "redirects";
    case CURLE_FILESIZE_EXCEEDED: return "too_large";
    case CURLE_GOT_NOTHING: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_PARTIAL_FILE: return "reset";
    case CURLE_WEIRD_SERVER_REPLY: case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_HTTP3:
    case CURLE_BAD_CONTENT_ENCODING: return "protocol";
    default: return "other";
  }
}

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

// The wait a 429 or 503 asks for with Retry-After (seconds, or an HTTP date), in ms from
// `now_ms`; -1 when there is none. It goes into the error's data as `retry_after_ms`, the
// number the VM's `retry` obeys (up to max_delay).
int64_t RetryAfterMs(long status, const std::vector<std::pair<std::string, std::string>>& headers, int64_t now_ms) {
  if (status != 429 && status != 503) return -1;
  auto it = std::find_if(headers.begin(), headers.end(), [](const auto& h) { return h.first == "retry-after"; });
  if (it == headers.end()) return -1;
  const std::string& text = it->second;
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return text.size() > 9 ? -1 : std::stoll(text) * 1000;
  std::tm tm{};
  if (!strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return -1;
  int64_t at_ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  return std::max<int64_t>(0, at_ms - now_ms);
}

Value Headers(Heap& heap, const std::vector<std::pair<std::string, std::string>>& headers) {
  Value map = heap.NewMap();
  for (const auto& [k, v] : headers) heap.Mutable<MapObj>(map.ref)->Set(k, heap.NewString(v));
  return map;
}

NativeResult Request(VM& vm, std::string method, Value* args, int argc, Value* out) {
  Heap& heap = vm.heap();
  if (args[0].tag != Tag::kString && args[0].tag != Tag::kSecret)
    return Raise(vm, "type", fmt::format("http.{}(url, options) takes a url string", method));
  // `url` goes over the wire (a secret in it revealed); `shown` is what messages say.
  std::string url, shown, error;
  ToDisplayString(heap, args[0], &shown, &error);
  if (!WireString(heap, args[0], "the url", &url, &error)) {
    Value data = heap.NewMap();
    heap.Mutable<MapObj>(data.ref)->Set("reason", heap.NewString("url"));
    return Raise(vm, "http", fmt::format("http.{}: {}", method, error), data);
  }
  const MapObj* options = nullptr;
  if (argc == 2) {
    if (args[1].tag != Tag::kMap) return Raise(vm, "type", "http options must be a map");
    options = heap.Get<MapObj>(args[1].ref);
  }
  auto option = [&](const char* name) -> const Value* { return options ? options->Find(name) : nullptr; };

  std::string load_error;
  const CurlApi* api = Curl(&load_error);
  if (!api) return Raise(vm, "http", load_error);
  // One handle per thread, reset between requests: connections are kept alive and reused.
  thread_local std::unique_ptr<CURL, void (*)(CURL*)> handle(api->easy_init(), api->easy_cleanup);
  CURL* curl = handle.get();
  api->easy_reset(curl);

  Transfer t;
  int64_t timeout_ms = kDefaultTimeoutMs;
  if (const Value* v = option("timeout")) {
    if (v->tag != Tag::kInt || v->i <= 0) return Raise(vm, "type", "http option timeout must be a positive duration");
    timeout_ms = v->i;
  }
  if (const Value* v = option("max_bytes")) {
    if (v->tag != Tag::kInt || v->i <= 0) return Raise(vm, "type", "http option max_bytes must be a positive int");
    t.max_bytes = v->i;
  }
  // Inside a timeout (or under --deadline) the transfer gets at most the time that is left;
  // cut short by it, it raises what the deadline raises (`budget` for the run's own).
  bool cut_by_deadline = false;
  if (vm.deadline() != INT64_MAX) {
    int64_t left = vm.deadline() - vm.host().NowMs();
    if (left <= 0) return RaiseDeadline(vm);
    cut_by_deadline = left <= timeout_ms;
    timeout_ms = std::min(timeout_ms, left);
  }
  // query: a map of parameters, URL-encoded onto the url.
  if (const Value* q = option("query")) {
    if (q->tag != Tag::kMap) return Raise(vm, "type", "http option query must be a map");
    std::string sep = url.find('?') == std::string::npos ? "?" : "&";
    for (const auto& [k, v] : heap.Get<MapObj>(q->ref)->entries) {
      std::string text, masked, error;
      if (!RevealString(heap, v, &text, &error) || !ToDisplayString(heap, v, &masked, &error)) return Raise(vm, "type", error);
      url += sep + UrlEncode(k) + "=" + UrlEncode(text);
      shown += sep + UrlEncode(k) + "=" + UrlEncode(masked);
      sep = "&";
    }
  }
  bool check = true;
  if (const Value* v = option("check")) check = v->Truthy();

  curl_slist* header_list = nullptr;
  bool has_idempotency_key = false;
  if (const Value* v = option("headers")) {
    if (v->tag != Tag::kMap) return Raise(vm, "type", "http option headers must be a map");
    for (const auto& [k, hv] : heap.Get<MapObj>(v->ref)->entries) {
      std::string text, error;
      if (k.empty() || k.find_first_of(std::string_view("\r\n:\0", 4)) != std::string::npos)
        return Raise(vm, "type", fmt::format("http header name `{}` is empty or contains a line break, colon or NUL byte",
                                            k.substr(0, k.find('\0'))));
      if (!WireString(heap, hv, fmt::format("http header `{}`", k), &text, &error)) return Raise(vm, "type", error);
      if (text.find_first_of("\r\n") != std::string::npos)
        return Raise(vm, "type", fmt::format("http header `{}` contains a line break", k));
      header_list = api->slist_append(header_list, (k + ": " + text).c_str());
      std::string lower = k;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      has_idempotency_key |= lower == "idempotency-key";
    }
  }
  std::string key = vm.host().IdempotencyKey();
  if (!key.empty() && !has_idempotency_key) header_list = api->slist_append(header_list, ("Idempotency-Key: " + key).c_str());
  std::string request_body;
  if (const Value* v = option("json")) {
    std::string error;
    if (!EncodeJsonRevealed(heap, *v, &request_body, &error)) return Raise(vm, "type", error);
    header_list = api->slist_append(header_list, "Content-Type: application/json");
  } else if (const Value* v = option("body")) {
    if (v->tag != Tag::kString && v->tag != Tag::kSecret) return Raise(vm, "type", "http option body must be a string");
    std::string error;
    RevealString(heap, *v, &request_body, &error);
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers_owner(header_list, api->slist_free_all);

  api->easy_setopt(curl, CURLOPT_URL, url.c_str());
  api->easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  api->easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  api->easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  api->easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
  api->easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  api->easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  api->easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // gzip/deflate; the cap applies after decoding
  api->easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  api->easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  api->easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  api->easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  api->easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
  std::string verb = method;
  std::transform(verb.begin(), verb.end(), verb.begin(), [](unsigned char c) { return std::toupper(c); });
  if (verb == "HEAD") {
    api->easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (verb != "GET") {
    api->easy_setopt(curl, CURLOPT_CUSTOMREQUEST, verb.c_str());
    if (verb != "DELETE" || !request_body.empty()) {
      api->easy_setopt(curl, CURLOPT_POSTFIELDS, request_body.data());
      api->easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request_body.size()));
    }
  }
  CURLcode code = api->easy_perform(curl);
  if (t.too_large) {
    Value data = heap.NewMap();
    heap.Mutable<MapObj>(data.ref)->Set("reason", heap.NewString("too_large"));
    return Raise(vm, "http", fmt::format("response from {} is larger than {} bytes", shown, t.max_bytes), data);
  }
  if (code == CURLE_OPERATION_TIMEDOUT) {
    if (cut_by_deadline) {
      vm.host().SleepMs(std::max<int64_t>(0, vm.deadline() - vm.host().NowMs()));  // curl may end a hair early
      return RaiseDeadline(vm);
    }
    return Raise(vm, "timeout", fmt::format("{} did not answer within {} ms", shown, timeout_ms));
  }
  if (code != CURLE_OK) {
    Value data = heap.NewMap();
    heap.Mutable<MapObj>(data.ref)->Set("reason", heap.NewString(Reason(code)));
    return Raise(vm, "http", fmt::format("{} {}: {}", method, shown, api->easy_strerror(code)), data);
  }
  // What the server sent back may echo a secret it was given: scrubbed before it is a value.
  SecretScrubber scrubber(heap, vm.host());
  t.body = scrubber.Scrub(std::move(t.body));
  for (auto& [name, value] : t.headers) value = scrubber.Scrub(std::move(value));
  long status = 0;
  api->easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  Value response = heap.NewMap();
  heap.Mutable<MapObj>(response.ref)->Set("status", Value::Int(status));
  heap.Mutable<MapObj>(response.ref)->Set("headers", Headers(heap, t.headers));
  if (check && (status < 200 || status > 299)) {
    std::string capped = t.body.size() > kErrorBodyCap ? t.body.substr(0, kErrorBodyCap) : t.body;
    heap.Mutable<MapObj>(response.ref)->Set("body", heap.NewString(capped));
    if (int64_t after = RetryAfterMs(status, t.headers, vm.host().NowMs()); after >= 0)
      heap.Mutable<MapObj>(response.ref)->Set("retry_after_ms", Value::Int(after));
    return Raise(vm, "http", fmt::format("{} {} answered {}", method, shown, status), response);
  }
  heap.Mutable<MapObj>(response.ref)->Set("body", heap.NewString(std::move(t.body)));
  *out = response;
  return kDone;
}

}  // namespace

NativeResult HttpGet(VM& vm, Value* args, int argc, Value* out) { return Request(vm, "get", args, argc, out); }
NativeResult HttpPost(VM& vm, Value* args, int argc, Value* out) { return Request(vm, "post", args, argc, out); }
NativeResult HttpPut(VM& vm, Value* args, int argc, Value* out) { return Request(vm, "put", args, argc, out); }
NativeResult HttpPatch(VM& vm, Value* args, int argc, Value* out) { return Request(vm, "patch", args, argc, out); }
NativeResult HttpDelete(VM& vm, Value* args, int argc, Value* out) { return Request(vm, "delete", args, argc, out); }

// http.request(method, url [, options])
NativeResult HttpRequest(VM& vm, Value* args, int argc, Value* out) {
  if (args[0].tag != Tag::kString) return Raise(vm, "type", "http.request(method, url, options) takes a method string");
  std::string method = vm.heap().StringOf(args[0]);
  std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
  static const char* kMethods[] = {"get", "post", "put", "patch", "delete", "head", "options"};
  if (std::find(std::begin(kMethods), std::end(kMethods), method) == std::end(kMethods))
    return Raise(vm, "type", fmt::format("http.request: unknown method `{}`", method));
  return Request(vm, method, args + 1, argc - 1, out);
}

}  // namespace flow::stdlib
