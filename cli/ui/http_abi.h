// The C interface between `flow` and its HTTP adapter (cli/ui/http_adapter.cc), a small
// shared module built on cpp-httplib and loaded only by `flow ui` (cli/ui/http_loader.cc).
// Plain C types only: the module and the binary each have their own C++ runtime.
#pragma once
#include <cstddef>

extern "C" {

struct FlowHttpRequest {
  const char* method;
  const char* target;  // path and query, as sent ("/api/runs?status=failed")
  const char* path;    // the path, percent-decoded by the server
  // Every header as "name: value\n", names in lower case.
  const char* headers;
  size_t headers_size;
  const char* body;
  size_t body_size;
  const char* remote_addr;
};

// Sets the response; `headers` are "Name: value\n" lines (Content-Type among them).
typedef void (*FlowHttpRespond)(void* reply, int status, const char* headers, size_t headers_size, const char* body,
                                size_t body_size);
// Called on the server's threads, concurrently.
typedef void (*FlowHttpHandler)(void* context, const FlowHttpRequest* request, void* reply, FlowHttpRespond respond);
// Called once the socket is bound, with the port (the one the system chose for port 0).
typedef void (*FlowHttpListening)(void* context, int port);

// Serves until the process ends. Returns only on failure, with a message in `error`.
typedef int (*FlowHttpServe)(const char* host, int port, size_t max_body, FlowHttpHandler handler,
                             FlowHttpListening listening, void* context, char* error, size_t error_size);

#define FLOW_HTTP_SERVE_SYMBOL "flow_http_serve"
int flow_http_serve(const char* host, int port, size_t max_body, FlowHttpHandler handler, FlowHttpListening listening,
                    void* context, char* error, size_t error_size);
}
