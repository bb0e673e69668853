// `flow ui`: a dashboard of the store's runs, served from this binary (docs/ui.md). This
// file holds what every request goes through (the token, the host and cross-site checks,
// the headers that keep pages inert) and the pages; cli/ui/api.cc holds the API.
#pragma once
#include <map>
#include <string>

#include "cli/ui/api.h"

namespace flow::ui {

inline constexpr char kTokenEnv[] = "FLOW_UI_TOKEN";
inline constexpr char kTokenCookie[] = "flow_ui_token";
inline constexpr int kDefaultPort = 8090;
inline constexpr size_t kMinTokenLength = 16;

struct UiOptions {
  std::string store;
  std::string bind = "127.0.0.1";
  int port = kDefaultPort;
  std::string token;  // --token, else FLOW_UI_TOKEN; required unless bound to loopback
};

// A request as the server sees it: headers by lower-case name.
struct HttpRequest {
  std::string method;
  std::string target;
  std::string path;
  std::map<std::string, std::string> headers;
  std::string body;
};

class UiServer {
 public:
  UiServer(const UiOptions& options, Api* api) : options_(options), api_(api) {}
  void set_port(int port) { port_ = port; }
  HttpResponse Handle(const HttpRequest& request);

 private:
  bool HostAllowed(const HttpRequest& request) const;
  bool Authorized(const HttpRequest& request) const;
  bool SameOrigin(const HttpRequest& request, std::string* why) const;
  HttpResponse Page(const std::string& path) const;
  UiOptions options_;
  Api* api_;
  int port_ = 0;
};

// Is `address` a loopback address (127.0.0.0/8, ::1, localhost)?
bool IsLoopback(const std::string& address);
// Percent-decoding of a query component ('+' is a space); false if malformed.
bool DecodeQueryComponent(std::string_view in, std::string* out);

// Runs `flow ui`: prints where it serves and never returns unless it cannot serve.
int UiCommand(UiOptions options);

}  // namespace flow::ui
