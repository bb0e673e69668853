// The HTTP adapter of `flow ui`: cpp-httplib (Debian's libcpp-httplib-dev) behind the C
// interface of http_abi.h. Debian ships cpp-httplib as a shared library (built with
// OpenSSL, zlib and brotli) and no static one, so this module is built apart, embedded in
// the flow binary, and loaded by `flow ui` alone: no other flow process maps those
// libraries (docs/ui.md, "How it is built").
#include <httplib.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "cli/ui/http_abi.h"

namespace {

void Respond(void* reply, int status, const char* headers, size_t headers_size, const char* body, size_t body_size) {
  auto* res = static_cast<httplib::Response*>(reply);
  res->status = status;
  std::string content_type = "application/octet-stream";
  std::string_view rest(headers, headers_size);
  while (!rest.empty()) {
    size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    size_t colon = line.find(": ");
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon)), value(line.substr(colon + 2));
    if (strcasecmp(name.c_str(), "content-type") == 0)
      content_type = value;
    else
      res->set_header(name, value);
  }
  res->set_content(std::string(body, body_size), content_type);
}

void Handle(FlowHttpHandler handler, void* context, const httplib::Request& req, httplib::Response& res) {
  std::string headers;
  for (const auto& [name, value] : req.headers) {
    for (char c : name) headers.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    headers += ": " + value + "\n";
  }
  FlowHttpRequest request{req.method.c_str(), req.target.c_str(), req.path.c_str(), headers.data(), headers.size(),
                          req.body.data(),    req.body.size(),    req.remote_addr.c_str()};
  handler(context, &request, &res, Respond);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int flow_http_serve(const char* host, int port, size_t max_body,
                                                                      FlowHttpHandler handler,
                                                                      FlowHttpListening listening, void* context,
                                                                      char* error, size_t error_size) {
  httplib::Server server;
  server.set_payload_max_length(max_body);
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second
  // `flow ui` on a taken port would share it silently instead of failing.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  auto handle = [=](const httplib::Request& req, httplib::Response& res) { Handle(handler, context, req, res); };
  // Every path and method goes to flow's router; httplib adds nothing of its own.
  server.Get(".*", handle);
  server.Post(".*", handle);
  server.Put(".*", handle);
  server.Delete(".*", handle);
  server.Options(".*", handle);
  server.Patch(".*", handle);
  int bound = port;
  bool ok = port == 0 ? (bound = server.bind_to_any_port(host)) > 0 : server.bind_to_port(host, port);
  if (!ok) {
    std::snprintf(error, error_size, "cannot listen on %s:%d: %s", host, port, std::strerror(errno));
    return 1;
  }
  listening(context, bound);
  if (!server.listen_after_bind()) {
    std::snprintf(error, error_size, "the server on %s:%d stopped", host, bound);
    return 1;
  }
  return 0;
}
