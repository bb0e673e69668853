#include "cli/ui/http_loader.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli/ui/embedded.h"

namespace flow::ui {

inline constexpr char kAdapterName[] = "http_adapter.so";

FlowHttpServe LoadHttpAdapter(std::string* error) {
  const EmbeddedFile* adapter = FindEmbeddedFile(kAdapterName);
  if (!adapter) {
    *error = "this flow binary was built without its HTTP adapter";
    return nullptr;
  }
  int fd = memfd_create("flow-ui-http", MFD_CLOEXEC);
  if (fd < 0) {
    *error = std::string("cannot create the adapter's memory file: ") + std::strerror(errno);
    return nullptr;
  }
  size_t written = 0;
  while (written < adapter->size) {
    ssize_t n = write(fd, adapter->bytes + written, adapter->size - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = std::string("cannot write the adapter's memory file: ") + std::strerror(errno);
      close(fd);
      return nullptr;
    }
    written += static_cast<size_t>(n);
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  close(fd);  // the mapping keeps the file
  if (!module) {
    const char* why = dlerror();
    *error = std::string("cannot load the HTTP server (flow ui needs Debian's libcpp-httplib0.11: apt-get install "
                         "libcpp-httplib0.11): ") +
             (why ? why : "unknown error");
    return nullptr;
  }
  auto serve = reinterpret_cast<FlowHttpServe>(dlsym(module, FLOW_HTTP_SERVE_SYMBOL));
  if (!serve) *error = "the HTTP adapter has no " FLOW_HTTP_SERVE_SYMBOL;
  return serve;
}

}  // namespace flow::ui
