#include "cli/commands.h"

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "runtime/program_file.h"
#include "runtime/test_runner.h"
#include "compiler/compiler.h"

namespace flow::cli {

std::string Printable(std::string_view text) {
  // Most text needs no escape: copied whole.
  if (std::all_of(text.begin(), text.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return c >= 0x20 && c < 0x7f;
      }))
    return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      out += fmt::format("\\u{{{:02x}}}", static_cast<unsigned char>(text[++i]));  // U+0080..U+009F
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

int Fail(const Status& s, const std::string& context) {
  fmt::print(stderr, "flow: {}{}\n", context.empty() ? "" : context + ": ", s.message());
  switch (s.code()) {
    case Status::Code::kCorruption: case Status::Code::kIOError: case Status::Code::kNotSupported: return kExitCorrupt;
    default: return kExitUsage;
  }
}

int LoadProgramOrSay(const std::string& path, Module* module, const runtime::ProgramCache* cache,
                     std::optional<std::string>* source) {
  std::string compiler_output;  // errors, or warnings when it compiles
  Status s = runtime::LoadProgram(path, module, &compiler_output, cache, source);
  if (!compiler_output.empty()) fmt::print(stderr, "{}", compiler_output);
  if (s.ok()) return kExitOk;
  if (!compiler_output.empty()) return kExitUsage;
  return Fail(s, "");
}

int WriteOutputFile(const std::string& command, const std::string& out, std::string_view bytes,
                    const std::string& input) {
  struct stat target;
  if (lstat(out.c_str(), &target) == 0) {
    // Replacing a device, a link or a folder by renaming over it would destroy it (as root,
    // -o /dev/null would replace /dev/null); and the input is not an output.
    if (!S_ISREG(target.st_mode)) {
      fmt::print(stderr, "flow {}: {} is not a regular file ({}); give a path to a file\n", command, out,
                 S_ISLNK(target.st_mode) ? "a symbolic link" : S_ISDIR(target.st_mode) ? "a folder" : "a device, pipe or socket");
      return kExitUsage;
    }
    struct stat source;
    if (!input.empty() && stat(input.c_str(), &source) == 0 && source.st_dev == target.st_dev &&
        source.st_ino == target.st_ino) {
      fmt::print(stderr, "flow {}: {} is the input file; give another output path\n", command, out);
      return kExitUsage;
    }
  }
  // Write then rename, so a crash never leaves a half-written file behind.
  std::string tmp = fmt::format("{}.tmp.{}", out, getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  bool ok = fd >= 0;
  for (size_t done = 0; ok && done < bytes.size();) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && fsync(fd) == 0;
  int error = errno;
  if (fd >= 0 && close(fd) != 0 && ok) {
    ok = false;
    error = errno;
  }
  if (ok && rename(tmp.c_str(), out.c_str()) != 0) {
    ok = false;
    error = errno;
  }
  if (!ok) {
    if (fd >= 0) unlink(tmp.c_str());
    fmt::print(stderr, "flow {}: cannot write {}: {}\n", command, out, std::strerror(error));
    // A place that cannot hold the file is the caller's mistake; a write that fails is I/O.
    return fd < 0 ? kExitUsage : kExitOutputFailed;
  }
  return kExitOk;
}

int CompileCommand(const std::string& file, std::string out) {
  Module module;
  if (int code = LoadProgramOrSay(file, &module); code != kExitOk) return code;
  if (out.empty()) {
    size_t dot = file.rfind('.');
    size_t slash = file.rfind('/');
    out = (dot != std::string::npos && (slash == std::string::npos || dot > slash) ? file.substr(0, dot) : file) + ".flowc";
  }
  return WriteOutputFile("compile", out, SerializeModule(module), file);
}

int CheckCommand(const std::string& file, bool json) {
  if (!json) {
    Module module;
    return LoadProgramOrSay(file, &module);
  }
  // One JSON object a line, for editors and CI: {"file", "line", "column", "severity", "message"}.
  std::vector<SourceFile> files;
  Diagnostics diags;
  if (Status s = runtime::CheckProgram(file, &files, &diags); !s.ok()) return Fail(s, "");
  for (const Diagnostic& d : diags.Sorted()) {
    nlohmann::json line = {{"file", d.file < files.size() ? files[d.file].shown : file},
                           {"line", d.loc.line},
                           {"column", d.loc.col},
                           {"severity", d.severity == Severity::kError ? "error" : "warning"},
                           {"message", d.message}};
    fmt::print("{}\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  return diags.HasErrors() ? kExitUsage : kExitOk;
}

int TestCommand(const std::vector<std::string>& files, uint64_t max_instructions) {
  runtime::TestOptions options;
  options.max_instructions = max_instructions;
  int passed = 0, failed = 0;
  bool broken = false;
  for (const std::string& file : files) {
    runtime::TestFileReport report;
    if (Status s = runtime::RunTestFile(file, options, &report); !s.ok()) return Fail(s, "");
    if (!report.compile_errors.empty()) {
      fmt::print(stderr, "{}", report.compile_errors);
      broken = true;
      continue;
    }
    fmt::print("{}\n", Printable(file));
    if (report.tests.empty()) fmt::print("  no tests (write them as test \"name\" {{ ... }})\n");
    for (const runtime::TestResult& t : report.tests) {
      fmt::print("  {} {} ({:.1f} ms)\n", t.passed ? "ok  " : "FAIL", Printable(t.name), t.elapsed_us / 1000.0);
      if (t.passed) {
        ++passed;
        continue;
      }
      ++failed;
      auto indented = [](const std::string& text) {
        std::string out;
        size_t at = 0;
        while (at < text.size()) {
          size_t end = text.find('\n', at);
          out += "       " + Printable(text.substr(at, end == std::string::npos ? std::string::npos : end - at)) + "\n";
          at = end == std::string::npos ? text.size() : end + 1;
        }
        return out;
      };
      fmt::print("{}", indented(t.failure));
      if (!t.output.empty()) fmt::print("       its output:\n{}", indented(t.output));
    }
  }
  fmt::print("{} passed, {} failed\n", passed, failed);
  std::fflush(stdout);
  return broken ? kExitUsage : failed > 0 ? kExitScriptFailed : kExitOk;
}

int DisasmCommand(const std::string& file) {
  Module module;
  if (int code = LoadProgramOrSay(file, &module); code != kExitOk) return code;
  std::string text = Disassemble(module);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace flow::cli
