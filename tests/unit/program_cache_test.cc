// The compiled-program cache (runtime/program_cache.h) called directly: where it lives, what
// its key depends on, and that an entry is found only by the compiler that wrote it.
#include "runtime/program_cache.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "compiler/compiler.h"

namespace flow::runtime {
namespace {

namespace fs = std::filesystem;

TEST(ProgramCacheDir, FlowCacheDirThenXdgThenHome) {
  EXPECT_EQ(ProgramCacheDir("/c", "/x", "/h"), "/c");
  EXPECT_EQ(ProgramCacheDir("", "/x", "/h"), "");  // set but empty: off
  EXPECT_EQ(ProgramCacheDir(nullptr, "/x", "/h"), "/x/flow");
  EXPECT_EQ(ProgramCacheDir(nullptr, "relative", "/h"), "/h/.cache/flow");  // XDG: relative is invalid
  EXPECT_EQ(ProgramCacheDir(nullptr, nullptr, "/h"), "/h/.cache/flow");
  EXPECT_EQ(ProgramCacheDir(nullptr, nullptr, nullptr), "");
}

TEST(ProgramCacheEntryName, EachPartOfTheKeyChangesIt) {
  std::string name = ProgramCacheEntryName("build-id 01", "/a.flow", "print(1)\n");
  EXPECT_EQ(name.size(), 32u + 6u);
  EXPECT_TRUE(name.ends_with(".flowc"));
  EXPECT_EQ(name, ProgramCacheEntryName("build-id 01", "/a.flow", "print(1)\n"));
  EXPECT_NE(name, ProgramCacheEntryName("build-id 02", "/a.flow", "print(1)\n"));
  EXPECT_NE(name, ProgramCacheEntryName("build-id 01", "/b.flow", "print(1)\n"));
  EXPECT_NE(name, ProgramCacheEntryName("build-id 01", "/a.flow", "print(2)\n"));
  // Fields are length-prefixed: moving bytes from one to the next is another key.
  EXPECT_NE(ProgramCacheEntryName("ab", "c", ""), ProgramCacheEntryName("a", "bc", ""));
}

TEST(CompilerIdentity, KnownForThisBinary) {
  // GCC and ld on Debian write a build-id note; without one it is the executable's identity.
  EXPECT_FALSE(CompilerIdentity().empty());
  EXPECT_EQ(&CompilerIdentity(), &CompilerIdentity());
}

TEST(ProgramCache, FoundOnlyByTheCompilerThatWroteIt) {
  char tmpl[] = "/tmp/flow-cache-test-XXXXXX";
  std::string dir = std::string(mkdtemp(tmpl)) + "/made/on/write";
  std::string source = "let x = 2\nprint(x * 21)\n";
  Module module;
  Diagnostics diags;
  ASSERT_TRUE(CompileSource("/p.flow", source, &module, &diags));
  ProgramCache cache(dir, "compiler one");
  EXPECT_FALSE(cache.Find("/p.flow", source));
  ASSERT_TRUE(cache.Store(source, module).ok());
  std::optional<Module> found = cache.Find("/p.flow", source);
  ASSERT_TRUE(found);
  EXPECT_EQ(SerializeModule(*found), SerializeModule(module));
  EXPECT_FALSE(ProgramCache(dir, "compiler two").Find("/p.flow", source));
  EXPECT_FALSE(cache.Find("/q.flow", source));
  EXPECT_FALSE(cache.Find("/p.flow", source + " "));
  EXPECT_FALSE(ProgramCache("", "compiler one").enabled());
  EXPECT_FALSE(ProgramCache(dir, "").enabled());
  fs::remove_all(fs::path(dir).parent_path().parent_path().parent_path());
}

}  // namespace
}  // namespace flow::runtime
