// Imports: compiling a program of several files (compiler/imports.h), and what the module
// keeps of them (bytecode format version 2).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "compiler/compiler.h"
#include "run_program.h"
#include "vm/base/coding.h"
#include "vm/bytecode/module.h"
#include "vm/bytecode/opcodes.h"

namespace flow {
namespace {

// A program of in-memory files: /p/main.flow and whatever `files` holds, by absolute path.
struct Program {
  std::map<std::string, std::string> files;
  Module module;
  std::string errors;
  std::vector<SourceFile> sources;

  bool Compile(const std::string& main) {
    sources = {{"/p/main.flow", "main.flow", main}};
    auto read = [this](const std::string& path, std::string* text, std::string* error) {
      auto it = files.find(path);
      if (it == files.end()) {
        *error = "no such file";
        return false;
      }
      *text = it->second;
      return true;
    };
    Diagnostics diags;
    bool ok = CompileProgram(&sources, read, &module, &diags);
    errors = diags.Render(sources);
    return ok;
  }
};

TEST(Imports, EachFileIsCompiledOnceAndRunsBeforeItsImporters) {
  Program p;
  p.files["/p/lib/a.flow"] = "import \"b.flow\" as b\nfn a() { return b.b() + 1 }\nprint(\"a\")\n";
  p.files["/p/lib/b.flow"] = "fn b() { return 41 }\nprint(\"b\")\n";
  ASSERT_TRUE(p.Compile("import \"lib/a.flow\" as a\nimport \"lib/b.flow\" as b\nprint(a.a(), b.b())\n")) << p.errors;
  ASSERT_EQ(p.module.imports.size(), 2u);
  EXPECT_EQ(p.module.imports[0].name, "/p/lib/a.flow");
  EXPECT_EQ(p.module.imports[1].name, "/p/lib/b.flow");
  EXPECT_EQ(p.module.imports[1].hash, Checksum(p.files["/p/lib/b.flow"]));
  int modules = 0;
  for (const Function& f : p.module.functions) {
    if (f.name == "<module>") ++modules;
    if (f.name == "a") EXPECT_EQ(p.module.FileOf(f), "/p/lib/a.flow");
    if (f.name == "b") EXPECT_EQ(p.module.FileOf(f), "/p/lib/b.flow");
  }
  EXPECT_EQ(modules, 2);  // b.flow, though imported twice, has one
  // Globals of imported files are named by their path from the main file's folder.
  EXPECT_NE(std::find(p.module.globals.begin(), p.module.globals.end(), "lib/b.flow:b"), p.module.globals.end());
}

TEST(Imports, ACycleIsNamedAndAMissingFileIsReportedAtItsImport) {
  Program p;
  p.files["/p/x.flow"] = "import \"y.flow\" as y\n";
  p.files["/p/y.flow"] = "\n\nimport \"x.flow\" as x\n";
  EXPECT_FALSE(p.Compile("import \"x.flow\" as x\n"));
  EXPECT_NE(p.errors.find("y.flow:3:1: error: import cycle: x.flow -> y.flow -> x.flow"), std::string::npos) << p.errors;
  Program q;
  EXPECT_FALSE(q.Compile("print(1)\nimport \"gone.flow\" as g\n"));
  EXPECT_NE(q.errors.find("main.flow:2:8: error: cannot import \"gone.flow\": no such file"), std::string::npos) << q.errors;
}

TEST(Imports, CompileSourceRefusesImports) {
  Module m;
  Diagnostics diags;
  EXPECT_FALSE(CompileSource("t.flow", "import \"x.flow\" as x\n", &m, &diags));
  EXPECT_NE(diags.Render("t.flow", "").find("cannot import"), std::string::npos);
}

TEST(Imports, FilesSurviveTheBytecodeFormat) {
  Program p;
  p.files["/p/m.flow"] = "fn f() { return 1 }\n";
  ASSERT_TRUE(p.Compile("import \"m.flow\" as m\nprint(m.f())\n")) << p.errors;
  std::string bytes = SerializeModule(p.module);
  Result<Module> back = DeserializeModule(bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->imports.size(), 1u);
  EXPECT_EQ(back->imports[0].name, "/p/m.flow");
  EXPECT_EQ(back->imports[0].hash, p.module.imports[0].hash);
  EXPECT_EQ(Disassemble(*back), Disassemble(p.module));
  // A function naming a file the module does not import is refused.
  Module bad = p.module;
  bad.functions.back().file = 2;
  EXPECT_FALSE(VerifyModule(bad).ok());
}

// A version 1 file (before imports), written field by field as docs/bytecode.md had it.
TEST(Imports, VersionOneFilesStillLoad) {
  std::string payload;
  PutBytes(&payload, "old.flow");
  PutVarint(&payload, 1);  // globals
  PutBytes(&payload, "args");
  PutVarint(&payload, 0);  // constants
  PutVarint(&payload, 1);  // functions
  PutBytes(&payload, "<script>");
  PutFixed8(&payload, 0);   // arity
  PutVarint(&payload, 2);   // max stack
  PutVarint(&payload, 0);   // upvalues
  PutBytes(&payload, std::string{static_cast<char>(Op::PUSH_NULL), static_cast<char>(Op::RETURN)});
  PutVarint(&payload, 0);  // lines
  PutVarint(&payload, 0);  // locals
  std::string bytes("\x7f" "FLOWBC\n", 8);
  PutFixed32(&bytes, 1);
  PutFixed64(&bytes, payload.size());
  PutFixed64(&bytes, Checksum(payload));
  bytes += payload;
  Result<Module> m = DeserializeModule(bytes);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(m->imports.empty());
  EXPECT_EQ(m->FileOf(m->functions[0]), "old.flow");
}

}  // namespace
}  // namespace flow
