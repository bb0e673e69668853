// flow lsp's parts below the protocol: positions and URIs (lsp/text.h), message framing
// (lsp/transport.h), and what an analysis answers (lsp/analysis.h) from the symbols the
// code generator records (compiler/symbols.h). tests/lsp/lsp_test.py drives the server.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "lsp/analysis.h"
#include "lsp/docs.h"
#include "lsp/text.h"
#include "lsp/transport.h"
#include "vm/bytecode/opcodes.h"

namespace flow::lsp {
namespace {

TEST(LspText, PositionsCountUtf16UnitsAndLocsCodePoints) {
  const std::string text = "ab\nx = \"é😀\" + y\r\nlast";
  // `y` is code point 13 of line 2 (1-based): é is one unit, 😀 two.
  Position p = ToPosition(text, {2, 13});
  EXPECT_EQ(p.line, 1u);
  EXPECT_EQ(p.character, 13u);
  ast::Loc loc = ToLoc(text, {1, 13});
  EXPECT_EQ(loc.line, 2u);
  EXPECT_EQ(loc.col, 13u);
  EXPECT_EQ(LineOf(text, 1), "x = \"é😀\" + y");  // without the \r
  EXPECT_EQ(LineOf(text, 2), "last");
  EXPECT_EQ(LineOf(text, 9), "");
  EXPECT_EQ(WordLength(text, {3, 1}), 4u);
  EXPECT_EQ(WordLength(text, {2, 3}), 1u);  // `=`: not a name, one character
}

TEST(LspText, FileUrisRoundTripWithPercentEncoding) {
  EXPECT_EQ(UriFromPath("/a b/c#1.flow"), "file:///a%20b/c%231.flow");
  EXPECT_EQ(PathFromUri("file:///a%20b/c%231.flow"), "/a b/c#1.flow");
  EXPECT_EQ(PathFromUri("file://localhost/x.flow"), "/x.flow");
  EXPECT_EQ(PathFromUri("untitled:Untitled-1"), "");
  EXPECT_EQ(PathFromUri("file://otherhost/x.flow"), "");
  EXPECT_EQ(PathFromUri("file:///x%2"), "/x%2");  // a cut escape is kept as written
}

TEST(LspTransport, ReadsFramedMessagesAndRefusesBrokenFrames) {
  std::istringstream in("Content-Length: 2\r\nContent-Type: x\r\n\r\n{}content-length:3\r\n\r\n[1]");
  std::string body, error;
  EXPECT_EQ(ReadMessage(in, &body, &error), ReadResult::kMessage);
  EXPECT_EQ(body, "{}");
  EXPECT_EQ(ReadMessage(in, &body, &error), ReadResult::kMessage);
  EXPECT_EQ(body, "[1]");
  EXPECT_EQ(ReadMessage(in, &body, &error), ReadResult::kEnd);

  for (const char* broken : {"Content-Length: x\r\n\r\n", "Content-Type: y\r\n\r\n{}", "Content-Length: 10\r\n\r\n{}",
                             "Content-Length: 99999999999\r\n\r\n", "Content-Length: 2\r\n"}) {
    std::istringstream bad(broken);
    error.clear();
    EXPECT_EQ(ReadMessage(bad, &body, &error), ReadResult::kBadFrame) << broken;
    EXPECT_FALSE(error.empty()) << broken;
  }
  std::ostringstream out;
  EXPECT_TRUE(WriteMessage(out, "{\"a\":1}"));
  EXPECT_EQ(out.str(), "Content-Length: 7\r\n\r\n{\"a\":1}");
}

TEST(LspDocs, EveryBuiltinAndMethodHasASignatureAndADocLine) {
  ASSERT_EQ(BuiltinDocs().size(), static_cast<size_t>(kBuiltinCount));
  for (size_t i = 0; i < BuiltinDocs().size(); ++i) {
    const BuiltinDoc& d = BuiltinDocs()[i];
    EXPECT_EQ(std::string(d.name), GetBuiltinInfo(static_cast<uint16_t>(i)).name);
    EXPECT_TRUE(std::string(d.signature).starts_with(d.name)) << d.name << ": " << d.signature;
    EXPECT_GT(std::string(d.doc).size(), 10u) << d.name;
  }
  for (const MethodDoc& m : MethodDocs()) {
    EXPECT_TRUE(std::string(m.signature).starts_with(std::string(m.name) + "(")) << m.name;
    EXPECT_GT(std::string(m.doc).size(), 10u) << m.name;
  }
}

// A program of in-memory files under /p.
struct Files {
  std::map<std::string, std::string> files;
  SourceReader Reader() {
    return [this](const std::string& path, std::string* text, std::string* error) {
      auto it = files.find(path);
      if (it == files.end()) {
        *error = "no such file";
        return false;
      }
      *text = it->second;
      return true;
    };
  }
};

const char* const kMain =
    "import \"lib/a.flow\" as a\n"       // 1
    "fn twice(n) {\n"                    // 2
    "  let doubled = n * 2\n"            // 3
    "  return doubled\n"                 // 4
    "}\n"                                // 5
    "print(twice(a.base), len(\"x\"))\n"  // 6
    "print([1].map(fn(v) { return v }))\n";  // 7

TEST(LspAnalysis, NamesResolveToTheirDeclarationsAcrossFiles) {
  Files f;
  f.files["/p/lib/a.flow"] = "// The base.\nlet base = 20\n";
  ParseCache cache;
  auto a = Analyze("/p/main.flow", kMain, f.Reader(), &cache);
  ASSERT_TRUE(a->parsed);
  ASSERT_FALSE(a->diags.HasErrors());
  Place place;
  ASSERT_TRUE(DefinitionAt(*a, {4, 10}, &place));  // return doubled
  EXPECT_EQ(place.file, 0);
  EXPECT_EQ(place.loc.line, 3u);
  EXPECT_EQ(place.loc.col, 7u);
  ASSERT_TRUE(DefinitionAt(*a, {3, 17}, &place));  // n * 2
  EXPECT_EQ(place.loc.line, 2u);
  EXPECT_EQ(place.loc.col, 10u);
  ASSERT_TRUE(DefinitionAt(*a, {6, 16}, &place));  // a.base
  EXPECT_EQ(a->files[place.file].name, "/p/lib/a.flow");
  EXPECT_EQ(place.loc.line, 2u);
  EXPECT_EQ(place.loc.col, 5u);
  EXPECT_FALSE(DefinitionAt(*a, {6, 24}, &place));  // len: a builtin

  Place range;
  EXPECT_NE(HoverAt(*a, {6, 24}, &range).find("len(x)"), std::string::npos);
  EXPECT_NE(HoverAt(*a, {6, 16}, &range).find("The base."), std::string::npos);
  EXPECT_NE(HoverAt(*a, {7, 11}, &range).find("list.map(f)"), std::string::npos);
  EXPECT_NE(HoverAt(*a, {2, 4}, &range).find("fn twice(n)"), std::string::npos);  // on the declaration itself
}

TEST(LspAnalysis, AnUnchangedFileIsNotParsedAgain) {
  Files f;
  f.files["/p/lib/a.flow"] = "let base = 20\n";
  ParseCache cache;
  auto first = Analyze("/p/main.flow", kMain, f.Reader(), &cache);
  auto lib = cache.Find("/p/lib/a.flow", f.files["/p/lib/a.flow"]);
  ASSERT_NE(lib, nullptr);
  auto second = Analyze("/p/main.flow", std::string(kMain) + "print(1)\n", f.Reader(), &cache);
  EXPECT_EQ(cache.Find("/p/lib/a.flow", f.files["/p/lib/a.flow"]), lib);  // the same parse, reused
  EXPECT_EQ(cache.Find("/p/main.flow", kMain), nullptr);                   // only a file's last text is kept
  EXPECT_FALSE(second->diags.HasErrors());
  f.files["/p/lib/a.flow"] = "let base = ";
  auto broken = Analyze("/p/main.flow", kMain, f.Reader(), &cache);
  EXPECT_TRUE(broken->diags.HasErrors());
  EXPECT_FALSE(broken->parsed);
  EXPECT_EQ(cache.Find("/p/lib/a.flow", "let base = "), nullptr);  // a parse with errors is not kept
}

TEST(LspAnalysis, CompletionsFollowScopesAndQualifiers) {
  Files f;
  f.files["/p/lib/a.flow"] = "let base = 20\nfn helper() { return 1 }\n";
  auto a = Analyze("/p/main.flow", kMain, f.Reader(), nullptr);
  auto labels = [&](ast::Loc loc, std::string_view before) {
    std::set<std::string> out;
    for (const Completion& c : CompletionsAt(*a, loc, before)) out.insert(c.label);
    return out;
  };
  EXPECT_EQ(labels({6, 9}, "print(a."), (std::set<std::string>{"base", "helper"}));
  auto in_twice = labels({4, 3}, "  ");
  EXPECT_TRUE(in_twice.count("doubled") && in_twice.count("n") && in_twice.count("twice") && in_twice.count("fn"));
  auto outside = labels({6, 1}, "");
  EXPECT_FALSE(outside.count("doubled") || outside.count("n"));
  EXPECT_TRUE(outside.count("json") && outside.count("print") && outside.count("a"));
  auto json_members = labels({6, 1}, "json.p");
  EXPECT_EQ(json_members, (std::set<std::string>{"encode", "parse"}));
}

}  // namespace
}  // namespace flow::lsp
