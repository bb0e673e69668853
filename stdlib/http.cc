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
#include <unordered_map>

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
  decltype(&curl_multi_init) multi_init;
  decltype(&curl_multi_add_handle) multi_add_handle;
  decltype(&curl_multi_remove_handle) multi_remove_handle;
  decltype(&curl_multi_perform) multi_perform;
  decltype(&curl_multi_poll) multi_poll;
  decltype(&curl_multi_info_read) multi_info_read;
  decltype(&curl_multi_cleanup) multi_cleanup;
};

const CurlApi* Curl(std::string* error);

}  // namespace

void PrepareHttp() {
  std::string ignored;
  Curl(&ignored);
}

namespace {

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
    bind(a.multi_init, "curl_multi_init");
    bind(a.multi_add_handle, "curl_multi_add_handle");
    bind(a.multi_remove_handle, "curl_multi_remove_handle");
    bind(a.multi_perform, "curl_multi_perform");
    bind(a.multi_poll, "curl_multi_poll");
    bind(a.multi_info_read, "curl_multi_info_read");
    bind(a.multi_cleanup, "curl_multi_cleanup");
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

// The transfers of a process, on one libcurl multi handle: each request is an easy handle
// added to it, and the VM polls it (curl_multi_poll) when its tasks wait, so that many
// transfers proceed at once on the VM's thread, without a thread per transfer.
class Transfers : public Completions {
 public:
  // One request: what libcurl needs alive while it runs, and what it brought back.
  struct Op {
    CURL* easy = nullptr;
    Transfer t;
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers{nullptr, nullptr};
    std::string request_body, url;
    CURLcode code = CURLE_OK;
    bool ended = false;
  };

  explicit Transfers(const CurlApi* api) : api_(api), multi_(api->multi_init()) {}

  uint64_t Start(std::unique_ptr<Op> op) {
    uint64_t id = ++next_id_;
    api_->easy_setopt(op->easy, CURLOPT_PRIVATE, reinterpret_cast<void*>(static_cast<uintptr_t>(id)));
    api_->multi_add_handle(multi_, op->easy);
    ops_[id] = std::move(op);
    ++running_;
    return id;
  }
  // The op that ended, handed over (its easy handle is the caller's to clean up).
  std::unique_ptr<Op> Take(uint64_t id) {
    auto node = ops_.extract(id);
    if (node.empty()) return nullptr;
    api_->multi_remove_handle(multi_, node.mapped()->easy);
    return std::move(node.mapped());
  }

  void Poll(int64_t timeout_ms, std::vector<uint64_t>* ended) override {
    int still = 0;
    api_->multi_perform(multi_, &still);
    if (!Collect(ended) && timeout_ms > 0) {
      api_->multi_poll(multi_, nullptr, 0, static_cast<int>(std::min<int64_t>(timeout_ms, INT32_MAX)), nullptr);
      api_->multi_perform(multi_, &still);
      Collect(ended);
    }
  }
  size_t pending() const override { return running_; }
  // Closes the connections kept for reuse (with nothing in flight).
  void ForgetConnections() {
    if (!ops_.empty()) return;
    api_->multi_cleanup(multi_);
    multi_ = api_->multi_init();
  }
  void Abandon(uint64_t id) override {
    auto op = Take(id);
    if (!op) return;
    if (!op->ended) --running_;
    api_->easy_cleanup(op->easy);
  }

 private:
  bool Collect(std::vector<uint64_t>* ended) {
    bool any = false;
    int left = 0;
    while (CURLMsg* msg = api_->multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      void* priv = nullptr;
      api_->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      uint64_t id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(priv));
      auto it = ops_.find(id);
      if (it == ops_.end() || it->second->ended) continue;
      it->second->ended = true;
      it->second->code = msg->data.result;
      --running_;
      ended->push_back(id);
      any = true;
    }
    return any;
  }

  const CurlApi* api_;
  CURLM* multi_;
  std::unordered_map<uint64_t, std::unique_ptr<Op>> ops_;
  uint64_t next_id_ = 0;
  size_t running_ = 0;
};

Transfers* process_transfers = nullptr;  // the process's transfers, made by its first request

Transfers& ProcessTransfers(const CurlApi* api) {
  static Transfers* transfers = process_transfers = new Transfers(api);  // for the process's life: handles in flight at exit are left
  return *transfers;
}

// What came back, as the effect's result: {status, headers, body}, or the error it raises.
struct RequestSummary {
  std::string method, shown;
  int64_t timeout_ms;
  bool cut_by_deadline, check;
};

NativeResult FinishRequest(VM& vm, const CurlApi* api, Transfers::Op& op, const RequestSummary& rq, Value* out) {
  Heap& heap = vm.heap();
  Transfer& t = op.t;
  if (t.too_large) {
    Value data = heap.NewMap();
    heap.Mutable<MapObj>(data.ref)->Set("reason", heap.NewString("too_large"));
    return Raise(vm, "http", fmt::format("response from {} is larger than {} bytes", rq.shown, t.max_bytes), data);
  }
  if (op.code == CURLE_OPERATION_TIMEDOUT) {
    if (rq.cut_by_deadline) {
      vm.host().SleepMs(std::max<int64_t>(0, vm.deadline() - vm.host().NowMs()));  // curl may end a hair early
      return RaiseDeadline(vm);
    }
    return Raise(vm, "timeout", fmt::format("{} did not answer within {} ms", rq.shown, rq.timeout_ms));
  }
  if (op.code != CURLE_OK) {
    Value data = heap.NewMap();
    heap.Mutable<MapObj>(data.ref)->Set("reason", heap.NewString(Reason(op.code)));
    return Raise(vm, "http", fmt::format("{} {}: {}", rq.method, rq.shown, api->easy_strerror(op.code)), data);
  }
  // What the server sent back may echo a secret it was given: scrubbed before it is a value.
  SecretScrubber scrubber(heap, vm.host());
  t.body = scrubber.Scrub(std::move(t.body));
  for (auto& [name, value] : t.headers) value = scrubber.Scrub(std::move(value));
  long status = 0;
  api->easy_getinfo(op.easy, CURLINFO_RESPONSE_CODE, &status);
  Value response = heap.NewMap();
  heap.Mutable<MapObj>(response.ref)->Set("status", Value::Int(status));
  heap.Mutable<MapObj>(response.ref)->Set("headers", Headers(heap, t.headers));
  if (rq.check && (status < 200 || status > 299)) {
    std::string capped = t.body.size() > kErrorBodyCap ? t.body.substr(0, kErrorBodyCap) : t.body;
    heap.Mutable<MapObj>(response.ref)->Set("body", heap.NewString(capped));
    if (int64_t after = RetryAfterMs(status, t.headers, vm.host().NowMs()); after >= 0)
      heap.Mutable<MapObj>(response.ref)->Set("retry_after_ms", Value::Int(after));
    return Raise(vm, "http", fmt::format("{} {} answered {}", rq.method, rq.shown, status), response);
  }
  heap.Mutable<MapObj>(response.ref)->Set("body", heap.NewString(std::move(t.body)));
  *out = response;
  return kDone;
}

// The easy handle's options for one request: url, protocols, redirects, timeout, where
// the answer goes, headers, method and body (op owns what libcurl must keep alive).
void SetUpTransfer(const CurlApi* api, Transfers::Op* op, const std::string& method, int64_t timeout_ms) {
  CURL* curl = op->easy;
  Transfer& t = op->t;
  curl_slist* header_list = op->headers.get();
  const std::string& request_body = op->request_body;
  api->easy_setopt(curl, CURLOPT_URL, op->url.c_str());
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
  // A handle per request, on the process's multi handle (which keeps connections alive).
  auto op = std::make_unique<Transfers::Op>();
  op->easy = api->easy_init();
  if (!op->easy) return Raise(vm, "http", "libcurl could not make a handle");
  struct CleanupUnlessStarted {
    const CurlApi* api;
    std::unique_ptr<Transfers::Op>& op;
    ~CleanupUnlessStarted() {
      if (op) api->easy_cleanup(op->easy);
    }
  } cleanup{api, op};
  Transfer& t = op->t;
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
  std::string& request_body = op->request_body;
  if (const Value* v = option("json")) {
    std::string error;
    if (!EncodeJsonRevealed(heap, *v, &request_body, &error)) return Raise(vm, "type", error);
    header_list = api->slist_append(header_list, "Content-Type: application/json");
  } else if (const Value* v = option("body")) {
    if (v->tag != Tag::kString && v->tag != Tag::kSecret) return Raise(vm, "type", "http option body must be a string");
    std::string error;
    RevealString(heap, *v, &request_body, &error);
  }
  op->headers = std::unique_ptr<curl_slist, void (*)(curl_slist*)>(header_list, api->slist_free_all);
  op->url = url;

  SetUpTransfer(api, op.get(), method, timeout_ms);
  // The transfer proceeds while other tasks run; its result is made on the VM's thread
  // when it ends.
  Transfers& transfers = ProcessTransfers(api);
  RequestSummary summary{method, shown, timeout_ms, cut_by_deadline, check};
  uint64_t id = transfers.Start(std::move(op));
  return vm.WaitForOperation(&transfers, id, [api, &transfers, id, summary](VM& vm, Value* out) {
    std::unique_ptr<Transfers::Op> done = transfers.Take(id);
    NativeResult r = FinishRequest(vm, api, *done, summary, out);
    api->easy_cleanup(done->easy);
    return r;
  });
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

namespace {
size_t DiscardBody(char*, size_t size, size_t n, void*) { return size * n; }
}  // namespace

bool PostJson(const std::string& url, const std::string& json, int64_t timeout_ms, std::string* error) {
  const CurlApi* api = Curl(error);
  if (!api) return false;
  CURL* curl = api->easy_init();
  if (!curl) {
    *error = "libcurl cannot make a handle";
    return false;
  }
  curl_slist* headers = api->slist_append(nullptr, "Content-Type: application/json");
  api->easy_setopt(curl, CURLOPT_URL, url.c_str());
  api->easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  api->easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  api->easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  api->easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms));
  api->easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  api->easy_setopt(curl, CURLOPT_POSTFIELDS, json.data());
  api->easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json.size()));
  api->easy_setopt(curl, CURLOPT_WRITEFUNCTION, DiscardBody);
  CURLcode code = api->easy_perform(curl);
  long status = 0;
  if (code == CURLE_OK) api->easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (code != CURLE_OK) *error = api->easy_strerror(code);
  else if (status < 200 || status > 299) *error = fmt::format("answered {}", status);
  api->easy_cleanup(curl);
  api->slist_free_all(headers);
  return code == CURLE_OK && status >= 200 && status <= 299;
}

void CloseHttpConnections() {
  if (process_transfers) process_transfers->ForgetConnections();
}

}  // namespace flow::stdlib
