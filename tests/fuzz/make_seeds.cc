// Writes seed inputs for the bytecode fuzzers: the compiled form of each .flow file given,
// whole (for fuzz_bytecode) and as a bare payload (for fuzz_bytecode_unsealed).
#include <fstream>
#include <iostream>
#include <sstream>

#include "checkpoint_input.h"
#include "fuzz_vm.h"
#include "compiler/compiler.h"
#include "stdlib/stdlib.h"
#include "vm/bytecode/decode.h"
#include "vm/vm.h"

namespace {

// Records the checkpoint taken after each effect of the fuzz program, as seeds.
class SeedJournal : public flow::EffectJournal {
 public:
  explicit SeedJournal(std::string dir) : dir_(std::move(dir)) {}
  flow::Status BeforeEffect(flow::VM&, uint64_t, uint16_t, const flow::Value*, int) override { return flow::Status::Ok(); }
  flow::Status AfterEffect(flow::VM& vm, uint64_t seq, uint16_t, flow::Value, bool) override {
    std::string header;
    flow::fuzz::RecordMap records;
    vm.EncodeCheckpoint(true, &header, &records);
    std::ofstream(dir_ + "/checkpoint/" + std::to_string(seq) + ".bin", std::ios::binary)
        << flow::fuzz::EncodeInput(header, records.records);
    return flow::Status::Ok();
  }

 private:
  std::string dir_;
};

// The mutants that once crashed the VM behind a valid checksum: the script's first POP
// turned into an opcode that closes a handler that is not open. The verifier refuses them;
// as seeds they lead the fuzzer to that check.
void WriteHandlerMutants(const flow::Module& module, const std::string& prefix) {
  const flow::Op kClosers[] = {flow::Op::STEP_END, flow::Op::RETRY_END, flow::Op::TIMEOUT_END, flow::Op::BREAKER_END,
                               flow::Op::POP_HANDLER};
  const std::string& code = module.functions[0].code;
  uint32_t pop = 0;
  flow::Instruction ins;
  while (pop < code.size() && flow::DecodeInstruction(code, pop, &ins) && ins.op != flow::Op::POP) pop += ins.size;
  if (pop >= code.size() || ins.op != flow::Op::POP) return;
  for (flow::Op op : kClosers) {
    flow::Module mutant = module;
    mutant.functions[0].code[pop] = static_cast<char>(op);
    std::ofstream(prefix + "_" + std::to_string(static_cast<int>(op)) + ".bin", std::ios::binary)
        << flow::SerializeModule(mutant).substr(28);
  }
}

}  // namespace

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
    WriteHandlerMutants(module, out_dir + "/payload/" + std::to_string(i));
  }
  flow::Module module;
  flow::Diagnostics diags;
  if (!flow::CompileSource("fuzz.flow", flow::fuzz::kFuzzProgram, &module, &diags)) return 1;
  flow::fuzz::NullHost host;
  flow::VM vm(&module, &host, flow::stdlib::GetNatives());
  SeedJournal journal(out_dir);
  vm.SetJournal(&journal);
  vm.Run();
  return 0;
}
