// A run's source travels with its code: stored beside the bytecode at start, read back by
// LoadRun, carried by run images (version 2), and absent (not an error) in a version 1 image.
#include <gtest/gtest.h>

#include "runtime/image.h"
#include "runtime/runtime.h"
#include "temp_dir.h"
#include "vm/base/coding.h"
#include "run_program.h"

namespace flow::runtime {
namespace {

class QuietListener : public RunListener {
 public:
  Status WriteOutput(std::string_view) override { return Status::Ok(); }
};

constexpr char kSource[] = "let v = signal.wait(\"go\")\nprint(v)\n";

// A suspended run of kSource in `store_dir`, started with its source.
void StartSuspended(const std::string& store_dir) {
  StartOptions options;
  options.file = "/p.flow";
  options.store_dir = store_dir;
  options.run_id = "r1";
  options.source = kSource;
  Module module = testing::Compile(kSource);
  QuietListener listener;
  RunResult result;
  ASSERT_TRUE(StartRun(options, module, &listener, &result).ok());
  ASSERT_EQ(result.outcome, RunOutcome::kSuspended);
}

std::optional<std::string> StoredSource(const std::string& store_dir) {
  store::Store st = store::Store::Open(store_dir, false).value();
  LoadedRun run;
  EXPECT_TRUE(OpenRunToRead(st, "r1", &run).ok());
  return run.source;
}

// The same image as version 1 wrote it: no has_source and source after the code.
std::string AsVersion1(std::string_view image) {
  Reader payload(image.substr(28));
  std::string v1;
  PutBytes(&v1, payload.Bytes());  // record
  PutBytes(&v1, payload.Bytes());  // code
  payload.U8();
  payload.Bytes();  // the source
  v1.append(image.substr(image.size() - payload.remaining()));
  std::string out(image.substr(0, 8));
  PutFixed32(&out, 1);
  PutFixed64(&out, v1.size());
  PutFixed64(&out, Checksum(v1));
  return out + v1;
}

TEST(CodeVersions, TheSourceIsStoredAndTravelsInImages) {
  testing::TempDir a, b, c;
  StartSuspended(a.path());
  EXPECT_EQ(StoredSource(a.path()), std::optional<std::string>(kSource));
  store::Store st = store::Store::Open(a.path(), false).value();
  std::string image;
  ASSERT_TRUE(ExportRun(st, "r1", &image).ok());
  store::Store into = store::Store::Open(b.path(), true).value();
  ASSERT_TRUE(ImportRun(into, image).ok());
  EXPECT_EQ(StoredSource(b.path()), std::optional<std::string>(kSource));
  store::Store old = store::Store::Open(c.path(), true).value();
  Result<std::string> imported = ImportRun(old, AsVersion1(image));
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  EXPECT_EQ(StoredSource(c.path()), std::nullopt) << "a version 1 image has no source, and is still read";
}

}  // namespace
}  // namespace flow::runtime
