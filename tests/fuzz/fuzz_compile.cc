// libFuzzer target: arbitrary bytes as Flow source through the parser and compiler. Must
// never crash; whatever compiles must serialize, load back and verify. The input may hold
// several files: each line "//@file NAME" starts the file /fuzz/NAME, which the text before
// it (the main file, /fuzz/main.flow) and the others may import.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "compiler/compiler.h"

namespace {

constexpr std::string_view kFileMarker = "\n//@file ";

// The main file's text; the other files by absolute path.
std::string SplitFiles(std::string_view input, std::map<std::string, std::string>* files) {
  size_t at = input.find(kFileMarker);
  std::string main(input.substr(0, at));
  while (at != std::string_view::npos) {
    size_t name_start = at + kFileMarker.size();
    size_t name_end = input.find('\n', name_start);
    std::string name(input.substr(name_start, name_end == std::string_view::npos ? std::string_view::npos : name_end - name_start));
    size_t text_start = name_end == std::string_view::npos ? input.size() : name_end + 1;
    at = input.find(kFileMarker, text_start);
    (*files)["/fuzz/" + name] = std::string(input.substr(text_start, at == std::string_view::npos ? std::string_view::npos : at - text_start));
  }
  return main;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, std::string> others;
  std::string main = SplitFiles(std::string_view(reinterpret_cast<const char*>(data), size), &others);
  std::vector<flow::SourceFile> files = {{"/fuzz/main.flow", "main.flow", main}};
  auto read = [&others](const std::string& path, std::string* text, std::string* error) {
    auto it = others.find(path);
    if (it == others.end()) {
      *error = "no such file";
      return false;
    }
    *text = it->second;
    return true;
  };
  flow::Module module;
  flow::Diagnostics diags;
  if (flow::CompileProgram(&files, read, &module, &diags)) {
    std::string bytes = flow::SerializeModule(module);
    flow::Result<flow::Module> back = flow::DeserializeModule(bytes);
    if (!back.ok()) std::abort();  // the compiler wrote bytecode its own loader rejects
    (void)flow::Disassemble(*back);
  } else {
    (void)diags.Render(files);
  }
  return 0;
}
