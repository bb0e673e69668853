// The .flowc file format: a checked header (magic, version, size, XXH3-64 checksum), then
// the source name, globals, constants and functions. The grammar is docs/bytecode.md.
#include <cstring>

#include "vm/base/coding.h"
#include "vm/bytecode/module.h"

namespace flow {

namespace {

constexpr std::string_view kMagic("\x7f" "FLOWBC\n", 8);
constexpr size_t kHeaderSize = 8 + 4 + 8 + 8;
constexpr uint64_t kMaxCount = 1u << 24;  // no real program comes near; stops absurd counts early

}  // namespace

uint32_t Function::LineAt(uint32_t pc) const {
  uint32_t line = lines.empty() ? 0 : lines[0].line;
  for (const auto& e : lines) {
    if (e.pc > pc) break;
    line = e.line;
  }
  return line;
}

bool LooksLikeBytecode(std::string_view bytes) { return bytes.substr(0, kMagic.size()) == kMagic; }

std::string SerializeModule(const Module& m) {
  std::string p;
  PutBytes(&p, m.source_name);
  PutVarint(&p, m.imports.size());
  for (const auto& f : m.imports) {
    PutBytes(&p, f.name);
    PutFixed64(&p, f.hash);
  }
  PutVarint(&p, m.globals.size());
  for (const auto& g : m.globals) PutBytes(&p, g);
  PutVarint(&p, m.constants.size());
  for (const auto& c : m.constants) {
    PutFixed8(&p, static_cast<uint8_t>(c.kind));
    switch (c.kind) {
      case Constant::Kind::kInt: PutFixed64(&p, static_cast<uint64_t>(c.i)); break;
      case Constant::Kind::kFloat: {
        uint64_t bits;
        std::memcpy(&bits, &c.f, 8);
        PutFixed64(&p, bits);
        break;
      }
      case Constant::Kind::kString: PutBytes(&p, c.s); break;
    }
  }
  PutVarint(&p, m.functions.size());
  for (const auto& f : m.functions) {
    PutBytes(&p, f.name);
    PutVarint(&p, f.file);
    PutFixed8(&p, f.arity);
    PutVarint(&p, f.max_stack);
    PutVarint(&p, f.upvalues.size());
    for (const auto& u : f.upvalues) {
      PutFixed8(&p, u.from_parent_local ? 1 : 0);
      PutVarint(&p, u.index);
    }
    PutBytes(&p, f.code);
    PutVarint(&p, f.lines.size());
    for (const auto& l : f.lines) {
      PutVarint(&p, l.pc);
      PutVarint(&p, l.line);
    }
    PutVarint(&p, f.locals.size());
    for (const auto& l : f.locals) {
      PutBytes(&p, l.name);
      PutVarint(&p, l.slot);
      PutVarint(&p, l.start_pc);
      PutVarint(&p, l.end_pc);
    }
  }
  std::string out(kMagic);
  PutFixed32(&out, kBytecodeFormatVersion);
  PutFixed64(&out, p.size());
  PutFixed64(&out, Checksum(p));
  out += p;
  return out;
}

Result<Module> DeserializeModule(std::string_view bytes) {
  if (bytes.size() < kHeaderSize || !LooksLikeBytecode(bytes))
    return Status::Corruption("not a Flow bytecode file (bad magic or shorter than its header)");
  Reader header(bytes.substr(kMagic.size(), kHeaderSize - kMagic.size()));
  uint32_t version = header.U32();
  uint64_t size = header.U64();
  uint64_t checksum = header.U64();
  if (version != kBytecodeFormatVersion && version != 1)
    return Status::NotSupported("bytecode format version " + std::to_string(version) +
                                " is not supported (this flow reads version " +
                                std::to_string(kBytecodeFormatVersion) + ")");
  std::string_view payload = bytes.substr(kHeaderSize);
  if (payload.size() != size)
    return Status::Corruption("bytecode file is truncated or has trailing bytes (payload " +
                              std::to_string(payload.size()) + " bytes, header says " +
                              std::to_string(size) + ")");
  if (Checksum(payload) != checksum) return Status::Corruption("bytecode checksum mismatch");

  Reader r(payload);
  Module m;
  auto count = [&r]() -> uint64_t {
    uint64_t n = r.Varint();
    if (n > kMaxCount || n > r.remaining()) {
      // Each element takes at least one byte, so a larger count cannot be honest.
      r.Raw(r.remaining() + 1);
      return 0;
    }
    return n;
  };
  m.source_name = std::string(r.Bytes());
  uint64_t n = version >= 2 ? count() : 0;
  for (uint64_t i = 0; i < n && !r.failed(); ++i) {
    ImportedFile f;
    f.name = std::string(r.Bytes());
    f.hash = r.U64();
    m.imports.push_back(std::move(f));
  }
  if (m.imports.size() >= UINT16_MAX) return Status::Corruption("bytecode imports more files than it can name");
  n = count();
  for (uint64_t i = 0; i < n && !r.failed(); ++i) m.globals.emplace_back(r.Bytes());
  n = count();
  for (uint64_t i = 0; i < n && !r.failed(); ++i) {
    Constant c;
    uint8_t kind = r.U8();
    if (kind > 2) return Status::Corruption("bytecode constant " + std::to_string(i) + " has unknown kind");
    c.kind = static_cast<Constant::Kind>(kind);
    if (c.kind == Constant::Kind::kInt) {
      c.i = static_cast<int64_t>(r.U64());
    } else if (c.kind == Constant::Kind::kFloat) {
      uint64_t bits = r.U64();
      std::memcpy(&c.f, &bits, 8);
    } else {
      c.s = std::string(r.Bytes());
    }
    m.constants.push_back(std::move(c));
  }
  n = count();
  for (uint64_t i = 0; i < n && !r.failed(); ++i) {
    Function f;
    f.name = std::string(r.Bytes());
    if (version >= 2) {
      uint64_t file = r.Varint();
      if (file > m.imports.size()) return Status::Corruption("bytecode function " + f.name + " names a file it does not import");
      f.file = static_cast<uint16_t>(file);
    }
    f.arity = r.U8();
    uint64_t max_stack = r.Varint();
    if (max_stack > (1u << 16)) return Status::Corruption("bytecode function " + f.name + " claims an absurd stack size");
    f.max_stack = static_cast<uint32_t>(max_stack);
    uint64_t nu = count();
    for (uint64_t j = 0; j < nu && !r.failed(); ++j) {
      UpvalueDesc u;
      u.from_parent_local = r.U8() != 0;
      u.index = static_cast<uint16_t>(r.Varint());
      f.upvalues.push_back(u);
    }
    f.code = std::string(r.Bytes());
    uint64_t nl = count();
    for (uint64_t j = 0; j < nl && !r.failed(); ++j) {
      LineEntry e;
      e.pc = static_cast<uint32_t>(r.Varint());
      e.line = static_cast<uint32_t>(r.Varint());
      f.lines.push_back(e);
    }
    uint64_t nn = count();
    for (uint64_t j = 0; j < nn && !r.failed(); ++j) {
      LocalName l;
      l.name = std::string(r.Bytes());
      l.slot = static_cast<uint16_t>(r.Varint());
      l.start_pc = static_cast<uint32_t>(r.Varint());
      l.end_pc = static_cast<uint32_t>(r.Varint());
      f.locals.push_back(std::move(l));
    }
    m.functions.push_back(std::move(f));
  }
  if (r.failed()) return Status::Corruption("bytecode payload is malformed (a length runs past its end)");
  if (!r.at_end()) return Status::Corruption("bytecode payload has unexpected trailing bytes");
  Status s = VerifyModule(m);
  if (!s.ok()) return s;
  return m;
}

}  // namespace flow
