// Writes seed inputs for the bytecode fuzzers: the compiled form of each .flow file given,
// whole (for fuzz_bytecode) and as a bare payload (for fuzz_bytecode_unsealed).
#include <fstream>
#include <iostream>
#include <sstream>

#include "compiler/compiler.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: make_seeds OUT_DIR FILE.flow...\n";
    return 2;
  }
  std::string out_dir = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::ifstream in(argv[i]);
    std::stringstream buf;
    buf << in.rdbuf();
    flow::Module module;
    flow::Diagnostics diags;
    if (!flow::CompileSource(argv[i], buf.str(), &module, &diags)) continue;
    std::string bytes = flow::SerializeModule(module);
    std::ofstream(out_dir + "/whole/" + std::to_string(i) + ".flowc", std::ios::binary) << bytes;
    std::ofstream(out_dir + "/payload/" + std::to_string(i) + ".bin", std::ios::binary) << bytes.substr(28);
  }
  return 0;
}
