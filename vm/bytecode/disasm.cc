// `flow disasm`: one line per instruction, with operands resolved to what they name.
#include <fmt/format.h>

#include "vm/bytecode/decode.h"
#include "vm/bytecode/module.h"

namespace flow {

namespace {

std::string ConstantText(const Constant& c) {
  switch (c.kind) {
    case Constant::Kind::kInt: return std::to_string(c.i);
    case Constant::Kind::kFloat: return fmt::format("{}", c.f);
    case Constant::Kind::kString: {
      std::string s = c.s.size() > 40 ? c.s.substr(0, 40) + "..." : c.s;
      std::string out = "\"";
      for (char ch : s) out += ch == '\n' ? std::string("\\n") : ch == '"' ? std::string("\\\"") : std::string(1, ch);
      return out + "\"";
    }
  }
  return "?";
}

}  // namespace

std::string Disassemble(const Module& m) {
  std::string out = fmt::format("; module {}: {} functions, {} constants, {} globals\n", m.source_name,
                                m.functions.size(), m.constants.size(), m.globals.size());
  for (const ImportedFile& f : m.imports) out += fmt::format("; imports {}\n", f.name);
  for (size_t fi = 0; fi < m.functions.size(); ++fi) {
    const Function& f = m.functions[fi];
    if (f.file != 0) out += fmt::format("\n; from {}", m.FileOf(f));
    out += fmt::format("\nfunction #{} {} (arity {}, max stack {}, {} upvalues)\n", fi, f.name, f.arity, f.max_stack,
                       f.upvalues.size());
    uint32_t last_line = 0;
    for (uint32_t pc = 0; pc < f.code.size();) {
      Instruction ins;
      if (!DecodeInstruction(f.code, pc, &ins)) {
        out += fmt::format("  {:5}  <bad instruction>\n", pc);
        break;
      }
      const OpInfo& info = GetOpInfo(ins.op);
      uint32_t line = f.LineAt(pc);
      std::string line_text = line != last_line ? fmt::format("{:4}", line) : "   |";
      last_line = line;
      std::string operands, note;
      for (int i = 0; i < ins.operand_count; ++i) {
        uint32_t v = ins.operands[i];
        operands += fmt::format("{}{}", i ? " " : "", v);
        char kind = info.operands[i];
        if ((kind == 'K' || kind == 'N') && v < m.constants.size()) note += " " + ConstantText(m.constants[v]);
        if (kind == 'G' && v < m.globals.size()) note += " " + m.globals[v];
        if (kind == 'B' && v < static_cast<uint32_t>(kBuiltinCount)) note += " " + std::string(GetBuiltinInfo(v).name);
        if (kind == 'F' && v < m.functions.size()) note += " <fn " + m.functions[v].name + ">";
        if (kind == 'L') {
          for (const auto& l : f.locals)
            if (l.slot == v && pc >= l.start_pc && pc < l.end_pc) note += " " + l.name;
        }
      }
      // The name column is 14 wide; a name that fills it still gets a space before its operands.
      out += fmt::format("  {:5} {} {:<14}{:<12}{}\n", pc, line_text, std::string(info.name) + " ", operands,
                         note.empty() ? "" : ";" + note);
      pc += ins.size;
    }
  }
  return out;
}

}  // namespace flow
