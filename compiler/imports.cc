#include "compiler/imports.h"

#include <fmt/format.h>

#include <filesystem>

#include "compiler/parse.h"

namespace flow {

namespace {

// The most files one program may be made of, and the longest chain of imports (each link
// is a level of recursion here).
constexpr size_t kMaxFiles = 4096;
constexpr size_t kMaxDepth = 256;

class ImportWalk {
 public:
  ImportWalk(std::vector<SourceFile>* files, const SourceReader& read, Diagnostics* diags,
             std::vector<ImportUnit>* units, std::vector<uint16_t>* order, ParseCache* cache)
      : files_(files), read_(read), diags_(diags), units_(units), order_(order), cache_(cache) {}

  // Parses file `index`, then the files it imports that are not parsed yet (depth first),
  // then puts it in the order: after them.
  void Visit(uint16_t index) {
    diags_->set_file(index);
    const SourceFile& file = (*files_)[index];
    std::shared_ptr<const ast::Program> program = cache_ ? cache_->Find(file.name, file.text) : nullptr;
    if (!program) {
      const size_t diags_before = diags_->all().size(), errors_before = diags_->error_count();
      program = std::make_shared<const ast::Program>(ParseProgram(file.name, file.text, diags_));
      if (diags_->error_count() > errors_before) {
        (*units_)[index].program = std::move(program);
        return;
      }
      if (cache_ && diags_->all().size() == diags_before) cache_->Put(file.name, file.text, program);
    }
    (*units_)[index].program = program;
    std::vector<const ast::Stmt*> imports;
    for (const auto& stmt : program->body.stmts)
      if (stmt->kind == ast::StmtKind::kImport) imports.push_back(stmt.get());
    visiting_.push_back(index);
    for (const ast::Stmt* stmt : imports) {
      int target = Import(index, *stmt);
      diags_->set_file(index);
      if (target < 0) continue;
      if (!(*units_)[index].aliases.try_emplace(stmt->name, static_cast<uint16_t>(target)).second)
        diags_->Error(stmt->name_loc, fmt::format("`{}` names two imports", stmt->name));
    }
    visiting_.pop_back();
    order_->push_back(index);
  }

 private:
  // The index of the file `stmt` (in file `from`) imports, read and visited if it is new;
  // -1 with an error when it cannot be.
  int Import(uint16_t from, const ast::Stmt& stmt) {
    const std::string& path = stmt.expr->text;
    if (path.empty() || path.find('\0') != std::string::npos) {
      diags_->Error(stmt.expr->loc, "an import names a file: `import \"lib/name.flow\" as name`");
      return -1;
    }
    const SourceFile& importer = (*files_)[from];
    namespace fs = std::filesystem;
    const std::string name = (fs::path(importer.name).parent_path() / path).lexically_normal().string();
    for (size_t i = 0; i < files_->size(); ++i) {
      if ((*files_)[i].name != name) continue;
      for (size_t v = 0; v < visiting_.size(); ++v) {
        if (visiting_[v] != i) continue;
        std::string cycle;
        for (size_t k = v; k < visiting_.size(); ++k) cycle += (*files_)[visiting_[k]].shown + " -> ";
        diags_->Error(stmt.loc, fmt::format("import cycle: {}{}", cycle, (*files_)[i].shown));
        return -1;
      }
      return static_cast<int>(i);
    }
    if (files_->size() >= kMaxFiles || visiting_.size() >= kMaxDepth) {
      diags_->Error(stmt.loc, fmt::format("too many files imported (at most {}, chains of at most {})", kMaxFiles, kMaxDepth));
      return -1;
    }
    SourceFile file;
    file.name = name;
    file.shown = (fs::path(importer.shown).parent_path() / path).lexically_normal().string();
    std::string error;
    if (!read_(name, &file.text, &error)) {
      diags_->Error(stmt.expr->loc, fmt::format("cannot import \"{}\": {}", path, error));
      return -1;
    }
    const uint16_t index = static_cast<uint16_t>(files_->size());
    files_->push_back(std::move(file));
    units_->emplace_back();
    Visit(index);
    return index;
  }

  std::vector<SourceFile>* files_;
  const SourceReader& read_;
  Diagnostics* diags_;
  std::vector<ImportUnit>* units_;
  std::vector<uint16_t>* order_;
  ParseCache* cache_;
  std::vector<uint16_t> visiting_;  // the chain of imports being followed, for cycles
};

}  // namespace

bool ParseWithImports(std::vector<SourceFile>* files, const SourceReader& read, Diagnostics* diags,
                      std::vector<ImportUnit>* units, std::vector<uint16_t>* order, ParseCache* cache) {
  units->clear();
  units->resize(files->size());
  order->clear();
  ImportWalk walk(files, read, diags, units, order, cache);
  walk.Visit(0);
  diags->set_file(0);
  return !diags->HasErrors();
}

}  // namespace flow
