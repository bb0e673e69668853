// Test helper: a fresh folder under /tmp for a store or a run, removed with everything in it
// when the object goes (declare it before what is open inside it, so that it goes last).
#pragma once
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace flow::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/flow-unit-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace flow::testing
