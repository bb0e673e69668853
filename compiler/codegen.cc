// Code generation: walks the AST once, resolving names as it goes (locals, captured
// variables, globals, builtins), checking what can be checked before running, and
// emitting bytecode directly, in the manner of Lua's and clox's compilers.
//
// Frame layout: slot 0 holds the callee, then the parameters, then locals in order of
// declaration; temporaries sit above them. Variables declared at the top level of the
// script are globals. Function declarations are hoisted to the start of their block, so
// functions of one block may call each other in any order, and top-level code may call a
// function declared below it. What a hoisted function cannot do is read a top-level `let`
// that has not run yet: the script runs top to bottom, so that is decided here, from the
// order of the top-level statements (see CheckInitOrder).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "compiler/compiler.h"
#include "compiler/flow_methods.h"
#include "compiler/imports.h"
#include "compiler/parse.h"
#include "compiler/symbols.h"
#include "vm/base/coding.h"
#include "vm/bytecode/decode.h"
#include "vm/bytecode/methods.h"
#include "vm/bytecode/opcodes.h"

namespace flow {

namespace {

using ast::Block;
using ast::Expr;
using ast::ExprKind;
using ast::Loc;
using ast::Stmt;
using ast::StmtKind;

struct Local {
  std::string name;
  int depth;
  bool captured = false;
  uint32_t start_pc = 0;
  // Its place in the frame. Not its index among the locals + 1: a block that yields a value
  // (step, retry, timeout...) may declare locals above an expression's temporaries, as in
  // `f(1, step "k" { let y = 2; y })`.
  uint16_t slot = 0;
  // A `let` in a function or block: warned about if nothing reads it (names starting with
  // `_` excepted).
  bool warn_unused = false;
  bool used = false;
  Loc loc;
  int decl = -1;  // its SymbolDecl, when symbols are collected
};

struct Loop {
  size_t locals_at_body;        // locals live when an iteration starts (loop variables included)
  int stack_at_body;            // values on the stack then: `break` pops down to it
  int handler_depth;                 // tries open outside the loop
  std::vector<uint32_t> breaks;  // JUMP operands to patch to the exit
  std::vector<uint32_t> continues;
};

// A `finally` whose try body (or catch block) is being compiled: a jump out of it
// (`break`, `continue`, `return`) runs its block on the way.
struct Finally {
  const Block* block;
  int handler_depth;     // handlers open around the try: its own handler is the next
  size_t locals_at_try;  // locals declared before the try, the only ones its block sees
  size_t loops_at_try;   // loops around the try, the only ones its block may leave
};

class Codegen;

constexpr const char* kArgsGlobal = "args";

// Compiles one function; nested functions get a FunctionState of their own.
struct FunctionState {
  FunctionState* enclosing = nullptr;
  Function fn;
  std::vector<Local> locals;
  std::vector<std::pair<bool, uint16_t>> upvalue_keys;  // (from_parent_local, index), deduplicated
  int scope_depth = 0;
  int stack_depth = 0;
  int handler_depth = 0;
  std::vector<Loop> loops;
  std::vector<Finally> finallies;  // innermost last
  uint32_t last_line = 0;
  bool is_script = false;
  // "spawn" or "parallel" when this is a task's body: `break` and `continue` cannot leave it.
  const char* task_body = nullptr;
  Op last_op = Op::NOP;     // the last instruction emitted, and where, for the peephole rewrites
  uint32_t last_op_at = 0;
  // The last position no peephole rewrite may reach back across: a jump target, or where
  // a local's range starts (a rewrite would cut the instruction it starts at).
  uint32_t barrier = UINT32_MAX;
  std::map<std::string, Loc> global_refs;  // globals this function's code names, and where first
};

class Codegen {
 public:
  Codegen(Module* module, Diagnostics* diags, const CompileOptions& options)
      : m_(module), diags_(diags), options_(options), symbols_(options.symbols) {}

  // The names of the main file's tests, in order (CompileOptions::tests).
  const std::vector<std::string>& tests_found() const { return tests_found_; }

  // The program of `units` (units[i] the parse of files[i]), whose top-level code runs
  // in `order` (each file after the files it imports; the main file, 0, last). Each
  // imported file's top-level code is a function of its own, "<module>", called from the
  // script's first instructions, so that its traces name its file.
  void CompileFiles(const std::vector<SourceFile>& files, const std::vector<ImportUnit>& units,
                    const std::vector<uint16_t>& order) {
    units_ = &units;
    m_->source_name = files[0].name;
    const std::filesystem::path main_dir = std::filesystem::path(files[0].name).parent_path();
    prefixes_.assign(files.size(), "");
    for (size_t i = 1; i < files.size(); ++i) {
      m_->imports.push_back({files[i].name, Checksum(files[i].text)});
      prefixes_[i] = std::filesystem::path(files[i].name).lexically_relative(main_dir).generic_string() + ":";
    }
    m_->functions.emplace_back();  // reserve index 0 for the script
    FunctionState script;
    script.is_script = true;
    script.fn.name = "<script>";
    script.stack_depth = 1;
    state_ = &script;
    DeclareGlobal(kArgsGlobal);  // global 0: the program's arguments (flow run --arg k=v)
    for (uint16_t file : order) {
      if (file == 0) continue;
      FunctionState init;
      init.is_script = true;
      init.fn.name = "<module>";
      init.fn.file = file;
      init.stack_depth = 1;
      state_ = &init;
      CompileTopLevel(file, *units[file].program);
      const uint32_t index = static_cast<uint32_t>(m_->functions.size());
      m_->functions.emplace_back();
      Finish(&init, index);
      state_ = &script;
      SwitchFile(0);
      line_ = 1;
      Emit(Op::CLOSURE, index);
      Emit(Op::CALL, 0);
      Emit(Op::POP);
    }
    CompileTopLevel(0, *units[0].program);
    Finish(&script, 0);
  }

  // The top-level code of one file into the function being compiled (the script or a
  // module's "<module>"), ending with a return.
  void CompileTopLevel(uint16_t file, const ast::Program& program) {
    SwitchFile(file);
    FunctionState& top = *state_;
    // Every top-level name is known up front, so that functions may refer to globals
    // declared after them; top-level code itself may only use names already declared.
    pending_globals_.clear();
    top_lets_.clear();
    for (const auto& s : program.body.stmts) {
      if (s->kind == StmtKind::kLet || s->kind == StmtKind::kFnDecl) pending_globals_.insert(Global(s->name));
    }
    const auto& stmts = program.body.stmts;
    for (size_t i = 0; i < stmts.size(); ++i) {
      if (stmts[i]->kind == StmtKind::kFnDecl) DeclareGlobal(Global(stmts[i]->name));
      if (stmts[i]->kind == StmtKind::kLet) top_lets_.try_emplace(Global(stmts[i]->name), TopLet{i, stmts[i]->name_loc});
      if (stmts[i]->kind == StmtKind::kImport) CheckImportAlias(*stmts[i]);
      if (symbols_) DeclareTopLevelSymbol(*stmts[i]);
    }
    // Hoisting: every top-level function exists before the first statement runs.
    for (const auto& s : stmts) {
      if (s->kind != StmtKind::kFnDecl) continue;
      MarkLine(s->loc);
      CompileFunction(*s->fn, &callee_refs_[Global(s->name)]);
      Emit(Op::SET_GLOBAL, globals_.at(Global(s->name)));
    }
    for (size_t i = 0; i < stmts.size(); ++i) {
      const StmtKind kind = stmts[i]->kind;
      if (kind == StmtKind::kFnDecl || kind == StmtKind::kImport || kind == StmtKind::kTest) continue;
      top.global_refs.clear();
      CompileStmt(*stmts[i]);
      CheckInitOrder(i);
      // `let f = fn(...) {...}`: like a declared function, its body is checked where `f` is used.
      const Stmt& st = *stmts[i];
      if (st.kind == StmtKind::kLet && st.expr->kind == ExprKind::kFunction) callee_refs_[Global(st.name)] = last_fn_refs_;
    }
    CompileTests(stmts);
    Emit(Op::PUSH_NULL);
    Emit(Op::RETURN);
  }

  // `test "name" { }` blocks: each a function, checked like any other code. They run after
  // the file's top-level code, so they may read every top-level name. Under `flow test`
  // (CompileOptions::run_test) the script calls the chosen test of the main file at its end.
  void CompileTests(const std::vector<ast::StmtPtr>& stmts) {
    std::set<std::string> names;
    for (const auto& s : stmts) {
      if (s->kind != StmtKind::kTest) continue;
      if (!names.insert(s->name).second) diags_->Error(s->name_loc, fmt::format("a second test named \"{}\"", s->name));
      MarkLine(s->loc);
      std::map<std::string, Loc> refs;  // a test runs after all top-level code: no order to check
      const uint32_t index = CompileFunctionBody(*s->fn, &refs, nullptr);
      if (file_ != 0) continue;  // the tests of imported files are checked, not run
      const int number = static_cast<int>(tests_found_.size());
      tests_found_.push_back(s->name);
      if (options_.run_test == number) {
        Emit(Op::CLOSURE, index);
        Emit(Op::CALL, 0);
        Emit(Op::POP);
      }
    }
  }

 private:
  // ---- files and imports ----
  // Names the file being compiled: its errors, its functions and its globals' names.
  void SwitchFile(uint16_t file) {
    file_ = file;
    diags_->set_file(file);
  }

  // The global a top-level name of the file being compiled is: the name itself in the main
  // file, "PATH:name" in an imported one.
  std::string Global(const std::string& name) const { return prefixes_.empty() ? name : prefixes_[file_] + name; }
  // The name as the file's code writes it.
  std::string Bare(const std::string& global) const {
    const std::string& prefix = prefixes_.empty() ? "" : prefixes_[file_];
    return global.starts_with(prefix) ? global.substr(prefix.size()) : global;
  }

  // The file `alias` names in the file being compiled, or -1.
  int ImportedFile(const std::string& alias) const {
    if (!units_) return -1;
    const auto& aliases = (*units_)[file_].aliases;
    auto it = aliases.find(alias);
    return it == aliases.end() ? -1 : it->second;
  }

  // `import "..." as NAME`: NAME must not hide a builtin or a name of the file.
  void CheckImportAlias(const Stmt& s) {
    if (FindBuiltin(s.name) >= 0 || IsBuiltinModule(s.name) || s.name == kArgsGlobal)
      diags_->Error(s.name_loc, fmt::format("`{}` is a builtin; import the file as another name", s.name));
    else if (pending_globals_.count(Global(s.name)))
      diags_->Error(s.name_loc, fmt::format("`{}` names both an import and a top-level variable or function of this file", s.name));
  }

  // `alias.member` of an imported file: its global slot, or -1 if `object` is not an import
  // alias, or -2 (an error reported) if the file has no such top-level name.
  int ImportMember(const Expr& object, const std::string& member, Loc loc) {
    if (object.kind != ExprKind::kName) return -1;
    Resolved r = Resolve(object.text);
    if (r.kind != Resolved::kImport) return -1;
    const uint16_t file = static_cast<uint16_t>(r.index);
    auto g = globals_.find(prefixes_[file] + member);
    if (symbols_) {
      UseSymbol(SymbolUse::Kind::kDecl, object.loc, object.text.size(), DeclOf(r, object.text));
      auto d = global_decls_.find(prefixes_[file] + member);
      if (d != global_decls_.end()) UseSymbol(SymbolUse::Kind::kDecl, loc, member.size(), d->second);
    }
    if (g == globals_.end()) {
      diags_->Error(loc, fmt::format("`{}` ({}) has no top-level `{}`", object.text,
                                     prefixes_[file].substr(0, prefixes_[file].size() - 1), member));
      return -2;
    }
    return g->second;
  }

  // ---- symbols, for editors (CompileOptions::symbols) ----
  // A declaration of the file being compiled, seen to the end of the innermost block (or,
  // top_level, from the whole file). -1 when symbols are not collected.
  int DeclareSymbol(SymbolDecl::Kind kind, const std::string& name, Loc loc, bool top_level = false) {
    if (!symbols_ || compiling_stdlib_ || name.empty() || name[0] == '(') return -1;
    SymbolDecl d;
    d.kind = kind;
    d.name = name;
    d.file = file_;
    d.loc = loc;
    d.top_level = top_level;
    if (!top_level && !scope_ends_.empty()) d.scope_end = scope_ends_.back();
    symbols_->decls.push_back(std::move(d));
    return static_cast<int>(symbols_->decls.size() - 1);
  }

  void DeclareTopLevelSymbol(const Stmt& s) {
    int decl = -1;
    switch (s.kind) {
      case StmtKind::kFnDecl:
        decl = DeclareSymbol(SymbolDecl::Kind::kFunction, s.name, s.name_loc, true);
        if (decl >= 0) symbols_->decls[decl].params = s.fn->params;
        break;
      case StmtKind::kLet:
        if (global_decls_.count(Global(s.name))) return;  // a second `let` assigns the first's
        decl = DeclareSymbol(SymbolDecl::Kind::kVariable, s.name, s.name_loc, true);
        if (decl >= 0 && s.expr->kind == ExprKind::kFunction) symbols_->decls[decl].params = s.expr->fn->params;
        break;
      case StmtKind::kImport:
        decl = DeclareSymbol(SymbolDecl::Kind::kImport, s.name, s.name_loc, true);
        if (decl < 0) return;
        symbols_->decls[decl].import_file = ImportedFile(s.name);
        import_decls_[{file_, s.name}] = decl;
        return;
      default: return;
    }
    if (decl >= 0) global_decls_[Global(s.name)] = decl;
  }

  void UseSymbol(SymbolUse::Kind kind, Loc loc, size_t length, int decl, int builtin = -1, const std::string& method = "") {
    if (!symbols_ || compiling_stdlib_ || loc.line == 0 || (kind == SymbolUse::Kind::kDecl && decl < 0)) return;
    symbols_->uses.push_back({kind, file_, loc, static_cast<uint32_t>(length), decl, builtin, method});
  }

  // Names declared from here on are seen to `end` (the closing brace of the block they are in).
  struct ScopeEnd {
    ScopeEnd(std::vector<Loc>* ends, Loc end) : ends_(ends) { ends_->push_back(end); }
    ~ScopeEnd() { ends_->pop_back(); }
    std::vector<Loc>* ends_;
  };

  // ---- the order of top-level statements ----
  struct TopLet {
    size_t index;  // the top-level statement that assigns it (its first `let`)
    Loc loc;
  };

  // Top-level statement `index` has just been compiled: every global its code names must
  // have been assigned by a statement before it, and so must every top-level `let` that a
  // function it names (to call it or to pass it on) reads, directly or through the
  // functions it names in turn (Go counts references the same way to order package
  // initialisation). The script runs top to bottom, so otherwise the read would see a
  // variable whose `let` has not run.
  void CheckInitOrder(size_t index) {
    std::set<std::string> reported;
    for (const auto& [name, loc] : state_->global_refs) {
      if (auto let = UnassignedLet(name, index); let && reported.insert(name).second) {
        diags_->Error(loc, fmt::format("`{}` is used before it is assigned (its `let` is at line {})", Bare(name), let->loc.line));
      } else if (callee_refs_.count(name)) {
        CheckFunctionReads(name, loc, index, &reported);
      }
    }
  }

  // Reports each top-level `let` not run before statement `index` that function `name`
  // reads, directly or through the functions it names (breadth first).
  void CheckFunctionReads(const std::string& name, Loc loc, size_t index, std::set<std::string>* reported) {
    std::set<std::string> seen = {name};
    std::vector<std::string> queue = {name};
    for (size_t q = 0; q < queue.size(); ++q) {
      auto refs = callee_refs_.find(queue[q]);
      if (refs == callee_refs_.end()) continue;
      for (const auto& [reached, unused] : refs->second) {
        if (!seen.insert(reached).second) continue;
        queue.push_back(reached);
        const TopLet* let = UnassignedLet(reached, index);
        if (!let || !reported->insert(reached).second) continue;
        diags_->Error(loc, fmt::format("`{}` reads `{}`{} before `{}` is assigned (its `let` is at line {}): "
                                       "move that `let` above this line",
                                       Bare(name), Bare(reached), queue[q] == name ? "" : fmt::format(" (through `{}`)", Bare(queue[q])),
                                       Bare(reached), let->loc.line));
      }
    }
  }

  // The top-level `let` of `name` if it has not run before top-level statement `index`.
  const TopLet* UnassignedLet(const std::string& name, size_t index) const {
    auto let = top_lets_.find(name);
    return let != top_lets_.end() && let->second.index >= index ? &let->second : nullptr;
  }

  // ---- emission ----
  uint32_t pc() const { return static_cast<uint32_t>(state_->fn.code.size()); }

  void MarkLine(Loc loc) {
    if (loc.line != 0) line_ = loc.line;
  }

  // Emits an instruction; returns the offset of its last operand (for patching jumps).
  uint32_t Emit(Op op, uint32_t a = 0, uint32_t b = 0, uint32_t c = 0) {
    FunctionState& s = *state_;
    if (line_ != s.last_line || s.fn.lines.empty()) {
      s.fn.lines.push_back({pc(), line_});
      s.last_line = line_;
    }
    const OpInfo& info = GetOpInfo(op);
    s.last_op = op;
    s.last_op_at = pc();
    s.fn.code.push_back(static_cast<char>(op));
    uint32_t operands[3] = {a, b, c};
    uint32_t last_at = pc();
    for (size_t i = 0; i < info.operands.size(); ++i) {
      int width = OperandWidth(info.operands[i]);
      last_at = pc();
      if (width == 1) PutFixed8(&s.fn.code, static_cast<uint8_t>(operands[i]));
      else if (width == 2) PutFixed16(&s.fn.code, static_cast<uint16_t>(operands[i]));
      else PutFixed32(&s.fn.code, operands[i]);
    }
    StackEffect e = GetStackEffect(op, operands);
    s.stack_depth += e.pushes - e.pops;
    s.fn.max_stack = std::max<uint32_t>(s.fn.max_stack, s.stack_depth + 1);
    return last_at;
  }

  // The current position as a jump target: no peephole rewrite may reach back across it.
  uint32_t Label() {
    state_->barrier = pc();
    return pc();
  }

  // Emits a binary operator, folding a constant right operand that was just pushed into
  // the operator's _K form (`n - 1` becomes SUB_K instead of CONST, SUB).
  void EmitBinary(Op op) {
    static const std::map<Op, Op> kConstantForms = {
        {Op::ADD, Op::ADD_K}, {Op::SUB, Op::SUB_K}, {Op::MUL, Op::MUL_K}, {Op::MOD, Op::MOD_K},
        {Op::EQ, Op::EQ_K},   {Op::NE, Op::NE_K},   {Op::LT, Op::LT_K},   {Op::LE, Op::LE_K},
        {Op::GT, Op::GT_K},   {Op::GE, Op::GE_K}};
    auto form = kConstantForms.find(op);
    if (form == kConstantForms.end() || !LastIs(Op::CONST)) {
      Emit(op);
      return;
    }
    Emit(form->second, TakeLast(Op::CONST));
  }

  // Pushes a local; two in a row (`a + b`, `i * i`) become one GET_LOCAL2.
  void EmitGetLocal(uint32_t slot) {
    if (!LastIs(Op::GET_LOCAL)) {
      Emit(Op::GET_LOCAL, slot);
      return;
    }
    Emit(Op::GET_LOCAL2, TakeLast(Op::GET_LOCAL), slot);
  }

  // Stores the top into a global; a sum just computed goes straight there
  // (`total = total + x` becomes ADD_SET_GLOBAL instead of ADD, SET_GLOBAL).
  void EmitSetGlobal(uint32_t slot) {
    if (!LastIs(Op::ADD)) {
      Emit(Op::SET_GLOBAL, slot);
      return;
    }
    TakeLast(Op::ADD);
    Emit(Op::ADD_SET_GLOBAL, slot);
  }

  // Whether the last instruction emitted is `op` with no barrier after it, so that a
  // peephole rewrite may take it back.
  bool LastIs(Op op) const {
    const FunctionState& s = *state_;
    return s.last_op == op && s.last_op_at == pc() - InstructionSize(op) && s.barrier != pc();
  }

  // Removes the last instruction (a LastIs(op) one, of one operand) and returns its operand.
  uint32_t TakeLast(Op op) {
    FunctionState& s = *state_;
    const uint32_t at = s.last_op_at;
    Instruction ins;
    DecodeInstruction(s.fn.code, at, &ins);
    s.fn.code.resize(at);
    uint32_t none[3] = {};
    StackEffect e = GetStackEffect(op, none);
    s.stack_depth -= e.pushes - e.pops;
    if (!s.fn.lines.empty() && s.fn.lines.back().pc == at) {
      s.fn.lines.pop_back();
      s.last_line = s.fn.lines.empty() ? 0 : s.fn.lines.back().line;
    }
    s.last_op = Op::NOP;
    return ins.operands[0];
  }

  void PatchJump(uint32_t operand_at, uint32_t target) {
    std::string& code = state_->fn.code;
    for (int i = 0; i < 4; ++i) code[operand_at + i] = static_cast<char>(target >> (8 * i));
  }

  uint32_t AddConstant(const flow::Constant& c) {
    using Kind = flow::Constant::Kind;
    std::string key = std::to_string(static_cast<int>(c.kind)) + ":";
    if (c.kind == Kind::kInt) key += std::to_string(c.i);
    else if (c.kind == Kind::kFloat) key += fmt::format("{}", c.f) + (std::signbit(c.f) ? "-" : "");
    else key += c.s;
    auto [it, inserted] = constant_index_.try_emplace(key, static_cast<uint32_t>(m_->constants.size()));
    if (inserted) m_->constants.push_back(c);
    return it->second;
  }
  uint32_t StringConstant(const std::string& s) {
    flow::Constant c;
    c.kind = flow::Constant::Kind::kString;
    c.s = s;
    return AddConstant(c);
  }
  uint32_t IntConstant(int64_t i) {
    flow::Constant c;
    c.i = i;
    return AddConstant(c);
  }
  uint32_t FloatConstant(double f) {
    flow::Constant c;
    c.kind = flow::Constant::Kind::kFloat;
    c.f = f;
    return AddConstant(c);
  }

  // ---- scopes and names ----
  void BeginScope() { ++state_->scope_depth; }

  // Pops the scope's locals. With keep_top, they sit below one value (a block's value),
  // which takes the first local's slot.
  void EndScope(bool keep_top = false) {
    FunctionState& s = *state_;
    --s.scope_depth;
    size_t keep = s.locals.size();
    bool captured = false;
    while (keep > 0 && s.locals[keep - 1].depth > s.scope_depth) {
      captured |= s.locals[keep - 1].captured;
      --keep;
    }
    size_t n = s.locals.size() - keep;
    if (n == 0) return;
    const uint16_t first = s.locals[keep].slot;
    if (captured) Emit(Op::CLOSE_FROM, first);
    if (keep_top) {
      Emit(Op::SET_LOCAL, first);
      if (n > 1) Emit(Op::POPN, static_cast<uint32_t>(n - 1));
    } else {
      Emit(Op::POPN, static_cast<uint32_t>(n));
    }
    for (size_t i = keep; i < s.locals.size(); ++i) {
      RecordLocalName(s.locals[i]);
      WarnIfUnused(s.locals[i]);
    }
    s.locals.resize(keep);
  }

  void RecordLocalName(const Local& l) {
    if (l.name.empty() || l.name[0] == '(') return;
    state_->fn.locals.push_back({l.name, l.slot, l.start_pc, pc()});
  }

  // Declares a value on the stack as a local named `name`: the top one, or with below_top
  // the one that many under it (a loop's hidden locals are pushed before they are named).
  // Returns its slot (slot 0 is the callee).
  uint16_t AddLocal(const std::string& name, Loc loc, int below_top = 0) {
    FunctionState& s = *state_;
    const int slot = s.stack_depth - 1 - below_top;
    if (s.locals.size() >= 60000 || slot > 60000) {
      diags_->Error(loc, "too many local variables in one function");
      return 0;
    }
    s.locals.push_back({name, s.scope_depth, false, pc(), static_cast<uint16_t>(slot), false, false, Loc{}});
    s.locals.back().decl = DeclareSymbol(SymbolDecl::Kind::kVariable, name, loc);
    s.barrier = pc();
    return static_cast<uint16_t>(slot);
  }

  bool AtGlobalScope() const { return state_->is_script && state_->scope_depth == 0; }

  uint16_t DeclareGlobal(const std::string& name) {
    auto [it, inserted] = globals_.try_emplace(name, static_cast<uint16_t>(m_->globals.size()));
    if (inserted) m_->globals.push_back(name);
    return it->second;
  }

  static int FindLocal(const FunctionState& s, const std::string& name) {
    for (size_t i = s.locals.size(); i-- > 0;)
      if (s.locals[i].name == name) return static_cast<int>(i);
    return -1;
  }

  int AddUpvalue(FunctionState* s, bool from_local, uint16_t index) {
    for (size_t i = 0; i < s->upvalue_keys.size(); ++i)
      if (s->upvalue_keys[i] == std::make_pair(from_local, index)) return static_cast<int>(i);
    s->upvalue_keys.emplace_back(from_local, index);
    s->fn.upvalues.push_back({from_local, index});
    return static_cast<int>(s->upvalue_keys.size() - 1);
  }

  void WarnIfUnused(const Local& l) {
    if (l.warn_unused && !l.used && !compiling_stdlib_)
      diags_->Warning(l.loc, fmt::format("`{}` is never used (name it `_{}` if that is meant)", l.name, l.name));
  }

  int ResolveUpvalue(FunctionState* s, const std::string& name) {
    if (!s->enclosing) return -1;
    int local = FindLocal(*s->enclosing, name);
    if (local >= 0) {
      s->enclosing->locals[local].captured = true;
      s->enclosing->locals[local].used = true;
      return AddUpvalue(s, true, s->enclosing->locals[local].slot);
    }
    int up = ResolveUpvalue(s->enclosing, name);
    if (up >= 0) return AddUpvalue(s, false, static_cast<uint16_t>(up));
    return -1;
  }

  struct Resolved {
    // kModule: a builtin module (`http`); kImport: an imported file's alias (index: the file)
    enum Kind { kLocal, kUpvalue, kGlobal, kBuiltin, kModule, kImport, kNone } kind;
    uint32_t index = 0;
  };

  // The declaration a resolved name refers to, or -1.
  int DeclOf(const Resolved& r, const std::string& name) const {
    switch (r.kind) {
      case Resolved::kLocal: return state_->locals[FindLocal(*state_, name)].decl;
      case Resolved::kUpvalue:
        for (const FunctionState* s = state_->enclosing; s; s = s->enclosing)
          if (int local = FindLocal(*s, name); local >= 0) return s->locals[local].decl;
        return -1;
      case Resolved::kGlobal: {
        auto it = global_decls_.find(Global(name));
        return it == global_decls_.end() ? -1 : it->second;
      }
      case Resolved::kImport: {
        auto it = import_decls_.find({file_, name});
        return it == import_decls_.end() ? -1 : it->second;
      }
      default: return -1;
    }
  }

  // A name written at `loc` (a use, recorded for editors); without loc, a lookup only.
  Resolved Resolve(const std::string& name, Loc loc = {}) {
    Resolved r = ResolveName(name, loc);
    if (symbols_ && loc.line != 0) {
      if (r.kind == Resolved::kBuiltin) UseSymbol(SymbolUse::Kind::kBuiltin, loc, name.size(), -1, static_cast<int>(r.index));
      else UseSymbol(SymbolUse::Kind::kDecl, loc, name.size(), DeclOf(r, name));
    }
    return r;
  }

  Resolved ResolveName(const std::string& name, Loc loc) {
    int local = FindLocal(*state_, name);
    if (local >= 0) {
      state_->locals[local].used = true;
      return {Resolved::kLocal, state_->locals[local].slot};
    }
    int up = ResolveUpvalue(state_, name);
    if (up >= 0) return {Resolved::kUpvalue, static_cast<uint32_t>(up)};
    const std::string global = Global(name);
    auto g = globals_.find(global);
    if (g == globals_.end() && !state_->is_script && pending_globals_.count(global)) {
      DeclareGlobal(global);  // a function may name a global declared below it
      g = globals_.find(global);
    }
    if (g == globals_.end() && name == kArgsGlobal) g = globals_.find(name);  // every file sees the program's args
    if (g != globals_.end()) {
      state_->global_refs.try_emplace(g->first, loc.line != 0 ? loc : Loc{line_, 0});
      return {Resolved::kGlobal, g->second};
    }
    if (int file = ImportedFile(name); file >= 0) return {Resolved::kImport, static_cast<uint32_t>(file)};
    int b = FindBuiltin(name);
    if (b >= 0) return {Resolved::kBuiltin, static_cast<uint32_t>(b)};
    if (IsBuiltinModule(name)) return {Resolved::kModule, 0};
    return {Resolved::kNone, 0};
  }

  // ---- statements ----
  void CompileBlock(const Block& block) {
    ScopeEnd scope(&scope_ends_, block.end);
    BeginScope();
    CompileStmts(block.stmts);
    EndScope();
  }

  // Compiles a block whose value is its last expression (null if it ends otherwise), for
  // step, retry, timeout and breaker: the value is left on the stack, its locals gone.
  void CompileBlockValue(const Block& block) {
    ScopeEnd scope(&scope_ends_, block.end);
    BeginScope();
    if (!CompileStmts(block.stmts, /*leave_value=*/true)) Emit(Op::PUSH_NULL);
    EndScope(/*keep_top=*/true);
  }

  // step / retry / timeout: the operand already on the stack becomes a hidden local, the
  // handler opens, the body leaves its value, the END opcode folds value and operand.
  void CompileGuardedBlock(const Expr& e, Op begin, Op end, uint32_t once = 0) {
    AddLocal(begin == Op::STEP_BEGIN ? "(step)" : begin == Op::RETRY_BEGIN ? "(retry)"
             : begin == Op::BREAKER_BEGIN ? "(breaker)" : begin == Op::LIMIT_BEGIN ? "(limit)" : "(timeout)", e.loc);
    MarkLine(e.loc);
    uint32_t skip = begin == Op::STEP_BEGIN ? Emit(Op::STEP_BEGIN, once, 0) : (Emit(begin), 0);
    ++state_->handler_depth;
    CompileBlockValue(*e.block);
    --state_->handler_depth;
    MarkLine(e.loc);
    Emit(end);
    state_->locals.pop_back();  // the END opcode consumed it
    if (begin == Op::STEP_BEGIN) PatchJump(skip, Label());
  }

  // With leave_value, a last expression statement leaves its value on the stack; returns
  // whether it did.
  bool CompileStmts(const std::vector<ast::StmtPtr>& stmts, bool leave_value = false) {
    // Hoist the block's function names so its functions can call each other in any order.
    if (!AtGlobalScope()) {
      for (const auto& s : stmts) {
        if (s->kind == StmtKind::kFnDecl) {
          MarkLine(s->loc);
          Emit(Op::PUSH_NULL);
          AddLocal(s->name, s->name_loc);
          if (int decl = state_->locals.back().decl; decl >= 0) {
            symbols_->decls[decl].kind = SymbolDecl::Kind::kFunction;
            symbols_->decls[decl].params = s->fn->params;
          }
        }
      }
    }
    bool valued = leave_value && !stmts.empty() && stmts.back()->kind == StmtKind::kExpr;
    WarnUnreachable(stmts);
    for (size_t i = 0; i < stmts.size(); ++i) {
      if (valued && i + 1 == stmts.size()) {
        MarkLine(stmts[i]->loc);
        CompileExpr(*stmts[i]->expr);
      } else {
        CompileStmt(*stmts[i]);
      }
    }
    return valued;
  }

  // The first statement of a block after a `return`, `throw`, `break` or `continue` (a
  // function declared there is hoisted, so it is not code that never runs).
  void WarnUnreachable(const std::vector<ast::StmtPtr>& stmts) {
    if (compiling_stdlib_) return;
    for (size_t i = 0; i + 1 < stmts.size(); ++i) {
      const StmtKind k = stmts[i]->kind;
      if (k != StmtKind::kReturn && k != StmtKind::kThrow && k != StmtKind::kBreak && k != StmtKind::kContinue) continue;
      for (size_t j = i + 1; j < stmts.size(); ++j) {
        if (stmts[j]->kind == StmtKind::kFnDecl) continue;
        static const char* const kWords[] = {"return", "throw", "break", "continue"};
        const char* word = kWords[k == StmtKind::kReturn ? 0 : k == StmtKind::kThrow ? 1 : k == StmtKind::kBreak ? 2 : 3];
        diags_->Warning(stmts[j]->loc, fmt::format("unreachable code: it follows the `{}` at line {}", word, stmts[i]->loc.line));
        return;
      }
      return;
    }
  }

  void CompileStmt(const Stmt& s) {
    MarkLine(s.loc);
    switch (s.kind) {
      case StmtKind::kLet:
        anonymous_defers_ = AtGlobalScope() && s.expr->kind == ExprKind::kFunction;
        CompileExpr(*s.expr);
        anonymous_defers_ = false;
        if (AtGlobalScope()) {
          EmitSetGlobal(DeclareGlobal(Global(s.name)));
        } else {
          AddLocal(s.name, s.name_loc);
          state_->locals.back().warn_unused = !s.name.starts_with("_");
          state_->locals.back().loc = s.name_loc;
        }
        break;
      case StmtKind::kFnDecl:
        CompileFunction(*s.fn);
        Emit(Op::SET_LOCAL, state_->locals[FindLocal(*state_, s.name)].slot);
        break;
      case StmtKind::kIf: {
        std::vector<uint32_t> to_end;
        for (size_t i = 0; i < s.branches.size(); ++i) {
          const ast::IfBranch& branch = s.branches[i];
          MarkLine(branch.cond->loc);
          CompileExpr(*branch.cond);
          uint32_t to_next = Emit(Op::JUMP_IF_FALSE, 0);
          CompileBlock(*branch.body);
          bool last = i + 1 == s.branches.size() && !s.else_body;
          if (!last) to_end.push_back(Emit(Op::JUMP, 0));
          PatchJump(to_next, Label());
        }
        if (s.else_body) CompileBlock(*s.else_body);
        if (!to_end.empty()) {
          uint32_t end = Label();
          for (uint32_t at : to_end) PatchJump(at, end);
        }
        break;
      }
      case StmtKind::kWhile: {
        uint32_t top = Label();
        CompileExpr(*s.expr);
        uint32_t to_exit = Emit(Op::JUMP_IF_FALSE, 0);
        state_->loops.push_back({state_->locals.size(), state_->stack_depth, state_->handler_depth, {}, {}});
        CompileBlock(*s.body);
        Loop loop = std::move(state_->loops.back());
        state_->loops.pop_back();
        for (uint32_t at : loop.continues) PatchJump(at, Label());
        Emit(Op::LOOP, top);
        PatchJump(to_exit, Label());
        for (uint32_t at : loop.breaks) PatchJump(at, Label());
        break;
      }
      case StmtKind::kFor: CompileFor(s); break;
      case StmtKind::kBreak:
      case StmtKind::kContinue: CompileJumpOut(s); break;
      case StmtKind::kReturn: {
        FunctionState& st = *state_;
        if (st.is_script) {
          diags_->Error(s.loc, "`return` outside a function");
          break;
        }
        int depth = st.stack_depth;
        if (s.expr)
          CompileExpr(*s.expr);
        else
          Emit(Op::PUSH_NULL);
        if (!st.finallies.empty()) {
          // The value is computed before the finally blocks run, and kept below their locals.
          AddLocal("(return)", s.loc);
          LeaveHandlersTo(st.finallies.front().handler_depth);
          st.locals.pop_back();  // RETURN takes it
          MarkLine(s.loc);
        }
        Emit(Op::RETURN);
        st.stack_depth = depth;
        break;
      }
      case StmtKind::kThrow: {
        int depth = state_->stack_depth;
        CompileExpr(*s.expr);
        Emit(Op::THROW);
        state_->stack_depth = depth;
        break;
      }
      case StmtKind::kTry:
        if (s.finally_body)
          CompileTryFinally(s);
        else
          CompileTryCatch(s);
        break;
      case StmtKind::kBlock: CompileBlock(*s.body); break;
      case StmtKind::kAssign: CompileAssign(s); break;
      case StmtKind::kExpr:
        CompileExpr(*s.expr);
        Emit(Op::POP);
        break;
      case StmtKind::kImport:  // the file's top-level imports are taken before its code
        diags_->Error(s.loc, "`import` only at the top level of a file");
        break;
      case StmtKind::kTest:  // compiled by CompileTests
        diags_->Error(s.loc, "`test` blocks only at the top level of a file");
        break;
    }
  }

  // try { body } catch name { else_body }. The catch block starts with the error pushed by
  // the VM, which becomes its variable.
  void CompileTryCatch(const Stmt& s) {
    uint32_t to_catch = Emit(Op::TRY_BEGIN, 0);
    ++state_->handler_depth;
    CompileBlock(*s.body);
    --state_->handler_depth;
    Emit(Op::POP_HANDLER);
    uint32_t to_end = Emit(Op::JUMP, 0);
    PatchJump(to_catch, Label());
    BeginScope();
    PushedByVm();  // the error
    ScopeEnd scope(&scope_ends_, s.else_body->end);
    AddLocal(s.name, s.name_loc);
    CompileStmts(s.else_body->stmts);
    EndScope();
    PatchJump(to_end, Label());
  }

  // try { ... } [catch e { ... }] finally { F }: a handler that takes every error around the
  // rest, and F compiled once per way out, as Java and CPython do: after the handler on the
  // normal way; at the handler's target with the error kept in a hidden local, thrown again
  // after F (a cancellation is such an error); and before each `break`, `continue` or
  // `return` that leaves the try (LeaveHandlersTo). No state of its own: F runs as plain
  // code, so a checkpoint inside it is like any other.
  void CompileTryFinally(const Stmt& s) {
    FunctionState& st = *state_;
    const int depth = st.stack_depth;
    MarkLine(s.loc);
    uint32_t to_error = Emit(Op::TRY_BEGIN, 0);
    st.finallies.push_back({s.finally_body.get(), st.handler_depth, st.locals.size(), st.loops.size()});
    ++st.handler_depth;
    if (s.else_body)
      CompileTryCatch(s);
    else
      CompileBlock(*s.body);
    --st.handler_depth;
    st.finallies.pop_back();
    Emit(Op::POP_HANDLER);
    CompileBlock(*s.finally_body);
    uint32_t to_end = Emit(Op::JUMP, 0);
    PatchJump(to_error, Label());
    PushedByVm();
    uint16_t error = AddLocal("(error)", s.loc);
    CompileBlock(*s.finally_body);
    MarkLine(s.loc);
    Emit(Op::GET_LOCAL, error);
    Emit(Op::THROW);  // its trace is where it was first raised
    st.locals.pop_back();
    st.stack_depth = depth;
    PatchJump(to_end, Label());
  }

  // A value the VM pushed at a handler's target (the error a catch or finally takes).
  void PushedByVm() {
    ++state_->stack_depth;
    state_->fn.max_stack = std::max<uint32_t>(state_->fn.max_stack, state_->stack_depth + 1);
  }

  // Before a jump out of handlers (`break`, `continue`, `return`): pops those opened at
  // handler depth `to` and above, innermost first, running each `finally` block among
  // them once its own handler is gone.
  void LeaveHandlersTo(int to) {
    FunctionState& st = *state_;
    const int saved = st.handler_depth;
    size_t next = st.finallies.size();  // finallies[next - 1]: the innermost not yet run
    for (int h = st.handler_depth - 1; h >= to; --h) {
      Emit(Op::POP_HANDLER);
      st.handler_depth = h;
      if (next > 0 && st.finallies[next - 1].handler_depth == h) InlineFinally(--next);
    }
    st.handler_depth = saved;
  }

  // Compiles finallies[index]'s block where a jump leaves its try. The block sees what it
  // sees where it is written: the try's locals are hidden (still on the stack, so its own go
  // above them), and the loops and finallies inside the try are closed.
  void InlineFinally(size_t index) {
    FunctionState& st = *state_;
    const Finally f = st.finallies[index];
    std::vector<Finally> inner_finallies(st.finallies.begin() + index, st.finallies.end());
    st.finallies.resize(index);
    std::vector<Loop> inner_loops(std::make_move_iterator(st.loops.begin() + f.loops_at_try),
                                  std::make_move_iterator(st.loops.end()));
    st.loops.resize(f.loops_at_try);
    std::vector<std::string> names;
    for (size_t i = f.locals_at_try; i < st.locals.size(); ++i) names.push_back(std::exchange(st.locals[i].name, "(hidden)"));
    CompileBlock(*f.block);
    for (size_t i = f.locals_at_try; i < st.locals.size(); ++i) st.locals[i].name = std::move(names[i - f.locals_at_try]);
    for (Loop& loop : inner_loops) st.loops.push_back(std::move(loop));
    st.finallies.insert(st.finallies.end(), inner_finallies.begin(), inner_finallies.end());
  }

  void CompileJumpOut(const Stmt& s) {
    bool is_break = s.kind == StmtKind::kBreak;
    FunctionState& st = *state_;
    if (st.loops.empty() && st.task_body) {
      diags_->Error(s.loc, fmt::format("`{}` cannot leave a `{}` block: its body runs as a task of its own",
                                       is_break ? "break" : "continue", st.task_body));
      return;
    }
    if (st.loops.empty()) {
      diags_->Error(s.loc, fmt::format("`{}` outside a loop", is_break ? "break" : "continue"));
      return;
    }
    const size_t loop_index = st.loops.size() - 1;
    const Loop& loop = st.loops.back();
    const size_t locals_at_body = loop.locals_at_body;
    const int stack_at_body = loop.stack_at_body;
    int depth = st.stack_depth;
    LeaveHandlersTo(loop.handler_depth);
    // Everything above the iteration's start goes: the body's locals, and the temporaries of
    // an expression whose block the jump leaves (`f(1, step "k" { break })`).
    if (st.locals.size() > locals_at_body) Emit(Op::CLOSE_FROM, st.locals[locals_at_body].slot);
    if (st.stack_depth > stack_at_body) Emit(Op::POPN, static_cast<uint32_t>(st.stack_depth - stack_at_body));
    uint32_t at = Emit(Op::JUMP, 0);
    Loop& target = st.loops[loop_index];
    (is_break ? target.breaks : target.continues).push_back(at);
    st.stack_depth = depth;
  }

  bool IsRangeCall(const Expr& e) {
    if (e.kind != ExprKind::kCall || e.object->kind != ExprKind::kName || e.object->text != "range") return false;
    if (e.items.empty() || e.items.size() > 2) return false;
    Resolved r = Resolve("range");
    return r.kind == Resolved::kBuiltin;
  }

  void CompileFor(const Stmt& s) {
    BeginScope();
    FunctionState& st = *state_;
    uint32_t exit_jump, top;
    uint16_t var_slot;
    size_t var_index;
    ScopeEnd scope(&scope_ends_, s.body->end);  // the loop's variables are seen in its body
    bool is_range = s.name2.empty() && IsRangeCall(*s.expr);
    uint16_t hidden;
    if (is_range) {
      // A numeric loop with no list: counter, limit, then the variable.
      const Expr& call = *s.expr;
      if (call.items.size() == 1) {
        Emit(Op::CONST, IntConstant(0));
        CompileExpr(*call.items[0]);
      } else {
        CompileExpr(*call.items[0]);
        CompileExpr(*call.items[1]);
      }
      hidden = AddLocal("(counter)", s.loc, 1);
      AddLocal("(limit)", s.loc);
      Emit(Op::PUSH_NULL);
      var_index = st.locals.size();
      var_slot = AddLocal(s.name, s.name_loc);
      exit_jump = Emit(Op::RANGE_PREP, hidden, 0);
      top = Label();
    } else {
      CompileExpr(*s.expr);
      Emit(Op::ITER_PREP);
      hidden = AddLocal("(sequence)", s.loc, 1);
      AddLocal("(index)", s.loc);
      Emit(Op::PUSH_NULL);
      var_index = st.locals.size();
      var_slot = AddLocal(s.name, s.name_loc);
      if (!s.name2.empty()) {
        Emit(Op::PUSH_NULL);
        AddLocal(s.name2, s.name2_loc);
      }
      top = Label();
      exit_jump = Emit(Op::FOR_ITER, hidden, s.name2.empty() ? 1 : 2, 0);
    }
    st.loops.push_back({st.locals.size(), st.stack_depth, st.handler_depth, {}, {}});
    CompileBlock(*s.body);
    Loop loop = std::move(st.loops.back());
    st.loops.pop_back();
    for (uint32_t at : loop.continues) PatchJump(at, Label());
    // Each iteration has variables of its own: close what closures captured of this one.
    bool captured = false;
    for (size_t i = var_index; i < st.locals.size(); ++i) captured |= st.locals[i].captured;
    if (captured) Emit(Op::CLOSE_FROM, var_slot);
    if (is_range) {
      Emit(Op::RANGE_LOOP, hidden, top);
    } else {
      Emit(Op::LOOP, top);
    }
    PatchJump(exit_jump, Label());
    for (uint32_t at : loop.breaks) PatchJump(at, Label());
    EndScope();
  }

  // The value of `target = value`, or of `target op= value` (the target's current value is
  // already on the stack): the value, then the operator.
  void CompileAssignedValue(const Stmt& s) {
    CompileExpr(*s.expr);
    if (s.assign_op.empty()) return;
    MarkLine(s.loc);
    EmitBinary(BinaryOpcode(s.assign_op));
  }

  void CompileAssign(const Stmt& s) {
    const Expr& target = *s.target;
    const bool compound = !s.assign_op.empty();
    if (target.kind == ExprKind::kName) {
      Resolved r = Resolve(target.text, target.loc);
      if (compound) {
        bool variable = r.kind == Resolved::kLocal || r.kind == Resolved::kUpvalue || r.kind == Resolved::kGlobal;
        if (variable) CompileName(target);
        else Emit(Op::PUSH_NULL);  // reported below; keeps the stack as the operator expects
      }
      CompileAssignedValue(s);
      switch (r.kind) {
        case Resolved::kLocal: Emit(Op::SET_LOCAL, r.index); return;
        case Resolved::kUpvalue: Emit(Op::SET_UPVAL, r.index); return;
        case Resolved::kGlobal: EmitSetGlobal(r.index); return;
        case Resolved::kBuiltin: case Resolved::kModule:
          diags_->Error(target.loc, fmt::format("cannot assign to builtin `{}`", target.text));
          break;
        case Resolved::kImport:
          diags_->Error(target.loc, fmt::format("cannot assign to `{}`: it names an imported file", target.text));
          break;
        case Resolved::kNone:
          diags_->Error(target.loc, fmt::format("assignment to undeclared name `{}` (declare it with `let {} = ...`)",
                                                target.text, target.text));
          break;
      }
      Emit(Op::POP);
    } else if (target.kind == ExprKind::kField && target.object->kind == ExprKind::kName &&
               Resolve(target.object->text).kind == Resolved::kImport) {
      diags_->Error(target.loc, fmt::format("cannot assign to `{}.{}`: an imported file's variables are set by its own "
                                            "code (give it a function that sets them)", target.object->text, target.text));
    } else if (target.kind == ExprKind::kField) {
      CompileExpr(*target.object);
      if (compound) {
        Emit(Op::DUP);
        MarkLine(target.loc);
        Emit(Op::GET_FIELD, StringConstant(target.text));
      }
      CompileAssignedValue(s);
      MarkLine(target.loc);
      Emit(Op::SET_FIELD, StringConstant(target.text));
    } else if (target.kind == ExprKind::kIndex) {
      CompileExpr(*target.object);
      CompileExpr(*target.items[0]);
      if (compound) {
        Emit(Op::DUP2);
        MarkLine(target.loc);
        Emit(Op::GET_INDEX);
      }
      CompileAssignedValue(s);
      MarkLine(target.loc);
      Emit(Op::SET_INDEX);
    }
  }

  // ---- functions ----
  // Compiles a function and emits its CLOSURE. The globals its code names (its nested
  // functions' included) go to *refs, or, for an anonymous function, are counted as named
  // where it stands unless it is the value of a top-level `let` (see CheckInitOrder).
  void CompileFunction(const ast::FnDef& def, std::map<std::string, Loc>* refs = nullptr,
                       const char* task_body = nullptr) {
    Emit(Op::CLOSURE, CompileFunctionBody(def, refs, task_body));
  }

  // Compiles a function into the module and returns its index. A method written in Flow
  // (method_name "list.map") has its first parameter, `self`, in slot 0, where a call
  // keeps the callee: the VM calls it with the receiver there.
  uint32_t CompileFunctionBody(const ast::FnDef& def, std::map<std::string, Loc>* refs, const char* task_body,
                               const std::string& method_name = "") {
    const bool method = !method_name.empty();
    FunctionState inner;
    inner.enclosing = state_;
    inner.fn.name = method ? method_name : def.name.empty() ? fmt::format("<fn:{}>", def.loc.line) : def.name;
    inner.fn.file = method ? 0 : file_;
    if (def.params.size() > 255) diags_->Error(def.loc, "a function takes at most 255 parameters");
    const size_t first = method ? 1 : 0;  // the first parameter that is an argument
    inner.fn.arity = static_cast<uint8_t>(std::min<size_t>(def.params.size() - first, 255));
    inner.stack_depth = 1 + inner.fn.arity;
    inner.fn.max_stack = inner.stack_depth;
    inner.scope_depth = 1;
    uint32_t saved_line = line_;
    state_ = &inner;
    std::set<std::string> seen;
    for (size_t i = 0; i < def.params.size(); ++i) {
      if (!seen.insert(def.params[i]).second)
        diags_->Error(def.param_locs[i], fmt::format("duplicate parameter `{}`", def.params[i]));
      inner.locals.push_back({def.params[i], 1, false, 0, static_cast<uint16_t>(i + 1 - first), false, false, Loc{}});
      ScopeEnd scope(&scope_ends_, def.body.end);
      inner.locals.back().decl = DeclareSymbol(SymbolDecl::Kind::kParameter, def.params[i], def.param_locs[i]);
    }
    ScopeEnd body_scope(&scope_ends_, def.body.end);
    inner.task_body = task_body;
    MarkLine(def.body.loc);
    if (!CompileStmts(def.body.stmts, def.returns_block_value)) Emit(Op::PUSH_NULL);
    Emit(Op::RETURN);
    state_ = inner.enclosing;
    line_ = saved_line;
    if (refs) {
      *refs = inner.global_refs;
    } else if (!state_->is_script) {
      // Code that runs the enclosing function may run this one.
      for (const auto& ref : inner.global_refs) state_->global_refs.try_emplace(ref.first, ref.second);
    } else {
      // An anonymous function in top-level code: `let f = fn...` is checked where `f` is
      // used; anywhere else it may run at once, so it counts as named here.
      last_fn_refs_ = inner.global_refs;
      if (!anonymous_defers_) for (const auto& ref : inner.global_refs) state_->global_refs.try_emplace(ref.first, def.loc);
    }
    uint32_t index = static_cast<uint32_t>(m_->functions.size());
    m_->functions.emplace_back();
    Finish(&inner, index);
    return index;
  }

  void Finish(FunctionState* s, uint32_t index) {
    for (size_t i = 0; i < s->locals.size(); ++i) {
      const Local& l = s->locals[i];
      WarnIfUnused(l);
      if (!l.name.empty() && l.name[0] != '(') s->fn.locals.push_back({l.name, l.slot, l.start_pc, static_cast<uint32_t>(s->fn.code.size())});
    }
    m_->functions[index] = std::move(s->fn);
  }

  // ---- expressions ----
  void CompileExprs(const std::vector<ast::ExprPtr>& items) {
    for (const auto& e : items) CompileExpr(*e);
  }

  // `json.parse` written as `module.function`, or -1 (with an error if the module exists
  // but the function does not).
  int ModuleFunction(const Expr& object, const std::string& member, Loc loc) {
    if (object.kind != ExprKind::kName) return -1;
    Resolved r = Resolve(object.text);
    if (r.kind != Resolved::kModule) return -1;
    int id = FindBuiltin(object.text + "." + member);
    if (id < 0) diags_->Error(loc, fmt::format("unknown function `{}.{}`", object.text, member));
    else UseSymbol(SymbolUse::Kind::kBuiltin, loc, member.size(), -1, id);
    return id < 0 ? -2 : id;
  }

  void CheckArity(int builtin, size_t argc, Loc loc) {
    const BuiltinInfo& b = GetBuiltinInfo(static_cast<uint16_t>(builtin));
    if (static_cast<int>(argc) < b.min_args || (b.max_args >= 0 && static_cast<int>(argc) > b.max_args)) {
      std::string want = b.max_args < 0 ? fmt::format("at least {}", b.min_args)
                         : b.min_args == b.max_args ? std::to_string(b.min_args)
                                                     : fmt::format("{} to {}", b.min_args, b.max_args);
      diags_->Error(loc, fmt::format("`{}` takes {} argument{}, got {}", b.name, want, want == "1" ? "" : "s", argc));
    }
  }

  void CompileCallArgs(const std::vector<ast::ExprPtr>& args, Loc loc) {
    if (args.size() > 255) diags_->Error(loc, "a call takes at most 255 arguments");
    CompileExprs(args);
  }

  void CompileExpr(const Expr& e) {
    MarkLine(e.loc);
    switch (e.kind) {
      case ExprKind::kInt: Emit(Op::CONST, IntConstant(e.int_value)); break;
      case ExprKind::kFloat: Emit(Op::CONST, FloatConstant(e.float_value)); break;
      case ExprKind::kString: Emit(Op::CONST, StringConstant(e.text)); break;
      case ExprKind::kBool: Emit(e.bool_value ? Op::PUSH_TRUE : Op::PUSH_FALSE); break;
      case ExprKind::kNull: Emit(Op::PUSH_NULL); break;
      case ExprKind::kName: CompileName(e); break;
      case ExprKind::kInterpolation: CompileSequence(e, Op::BUILD_STRING); break;
      case ExprKind::kList: CompileSequence(e, Op::BUILD_LIST); break;
      case ExprKind::kMap: CompileMapLiteral(e); break;
      case ExprKind::kFunction: CompileFunction(*e.fn); break;
      case ExprKind::kField: CompileField(e); break;
      case ExprKind::kIndex: CompileIndex(e); break;
      case ExprKind::kCall: CompileCall(e); break;
      case ExprKind::kMethod: CompileMethod(e); break;
      case ExprKind::kUnary: CompileUnary(e); break;
      case ExprKind::kBinary: CompileBinary(e); break;
      case ExprKind::kAnd:
      case ExprKind::kOr:
      case ExprKind::kCoalesce: CompileLogical(e); break;
      case ExprKind::kStep: CompileStep(e); break;
      case ExprKind::kRetry: CompileRetry(e); break;
      case ExprKind::kTimeout: CompileTimeout(e); break;
      case ExprKind::kBreaker: CompileBreaker(e); break;
      case ExprKind::kLimit: CompileLimit(e); break;
      case ExprKind::kSpawn: CompileSpawn(e); break;
      case ExprKind::kAwait: CompileAwait(e); break;
      case ExprKind::kParallel: CompileParallel(e); break;
    }
  }

  void CompileName(const Expr& e) {
    Resolved r = Resolve(e.text, e.loc);
    switch (r.kind) {
      case Resolved::kLocal: EmitGetLocal(r.index); break;
      case Resolved::kUpvalue: Emit(Op::GET_UPVAL, r.index); break;
      case Resolved::kGlobal: Emit(Op::GET_GLOBAL, r.index); break;
      case Resolved::kBuiltin: Emit(Op::GET_BUILTIN, r.index); break;
      case Resolved::kModule:
      case Resolved::kImport:
        diags_->Error(e.loc, fmt::format("`{}` is a module: use its names, like `{}.name`", e.text, e.text));
        Emit(Op::PUSH_NULL);
        break;
      case Resolved::kNone:
        diags_->Error(e.loc, fmt::format("undefined name `{}`", e.text));
        Emit(Op::PUSH_NULL);
        break;
    }
  }

  // An interpolated string or a list literal: its items, then one BUILD op.
  void CompileSequence(const Expr& e, Op build) {
    CompileExprs(e.items);
    CheckCount(e.items.size(), e.loc);
    Emit(build, static_cast<uint32_t>(e.items.size()));
  }

  void CompileMapLiteral(const Expr& e) {
    for (size_t i = 0; i < e.items.size(); ++i) {
      Emit(Op::CONST, StringConstant(e.keys[i]));
      CompileExpr(*e.items[i]);
    }
    CheckCount(e.items.size(), e.loc);
    Emit(Op::BUILD_MAP, static_cast<uint32_t>(e.items.size()));
  }

  // `object.name`: a module's function, or a field read.
  void CompileField(const Expr& e) {
    if (int global = ImportMember(*e.object, e.text, e.loc); global != -1) {
      MarkLine(e.loc);
      if (global >= 0) Emit(Op::GET_GLOBAL, static_cast<uint32_t>(global));
      else Emit(Op::PUSH_NULL);
      return;
    }
    int id = ModuleFunction(*e.object, e.text, e.loc);
    if (id >= 0 && IsBuiltinField(id)) {
      MarkLine(e.loc);
      Emit(Op::CALL_BUILTIN, static_cast<uint32_t>(id), 0);
    } else if (id >= 0) {
      Emit(Op::GET_BUILTIN, static_cast<uint32_t>(id));
    } else if (id == -2) {
      Emit(Op::PUSH_NULL);
    } else {
      CompileExpr(*e.object);
      MarkLine(e.loc);
      Emit(Op::GET_FIELD, StringConstant(e.text));
    }
  }

  void CompileIndex(const Expr& e) {
    CompileExpr(*e.object);
    CompileExpr(*e.items[0]);
    MarkLine(e.loc);
    Emit(Op::GET_INDEX);
  }

  // A call of a builtin by name is direct (its arity checked here); any other callee is a value.
  void CompileCall(const Expr& e) {
    if (e.object->kind == ExprKind::kName) {
      Resolved r = Resolve(e.object->text, e.object->loc);
      if (r.kind == Resolved::kBuiltin) {
        CheckArity(static_cast<int>(r.index), e.items.size(), e.loc);
        CompileCallArgs(e.items, e.loc);
        MarkLine(e.loc);
        Emit(Op::CALL_BUILTIN, r.index, static_cast<uint32_t>(e.items.size()));
        return;
      }
    }
    CompileExpr(*e.object);
    CompileCallArgs(e.items, e.loc);
    MarkLine(e.loc);
    Emit(Op::CALL, static_cast<uint32_t>(e.items.size()));
  }

  // `object.name(args)`: a module's function, or a method invoked on a value.
  void CompileMethod(const Expr& e) {
    if (int global = ImportMember(*e.object, e.text, e.loc); global != -1) {
      MarkLine(e.loc);
      if (global >= 0) Emit(Op::GET_GLOBAL, static_cast<uint32_t>(global));
      else Emit(Op::PUSH_NULL);
      CompileCallArgs(e.items, e.loc);
      MarkLine(e.loc);
      Emit(Op::CALL, static_cast<uint32_t>(e.items.size()));
      return;
    }
    int id = ModuleFunction(*e.object, e.text, e.loc);
    if (id >= 0) {
      CheckArity(id, e.items.size(), e.loc);
      CompileCallArgs(e.items, e.loc);
      MarkLine(e.loc);
      Emit(Op::CALL_BUILTIN, static_cast<uint32_t>(id), static_cast<uint32_t>(e.items.size()));
    } else if (id == -2) {
      CompileExprs(e.items);
      if (!e.items.empty()) Emit(Op::POPN, static_cast<uint32_t>(e.items.size()));
      Emit(Op::PUSH_NULL);
    } else {
      if (e.text.starts_with("_") && !compiling_stdlib_)
        diags_->Error(e.loc, fmt::format("`{}` is internal to the standard library; no method's name starts with `_`", e.text));
      called_methods_.insert(e.text);
      UseSymbol(SymbolUse::Kind::kMethod, e.loc, e.text.size(), -1, -1, e.text);
      CheckMethodCall(e);
      CompileExpr(*e.object);
      CompileCallArgs(e.items, e.loc);
      MarkLine(e.loc);
      Emit(Op::INVOKE, StringConstant(e.text), static_cast<uint32_t>(e.items.size()));
    }
  }

  // `x.name(args)` where x's type is known (a string, list or map literal, an interpolated
  // string, a `spawn`) and its method `name` does not exist or does not take that many
  // arguments: an error now rather than a `type` error when it runs. Any other x may be a
  // map holding a function under that name (`m.double(2)`), so nothing is known of it.
  void CheckMethodCall(const Expr& e) {
    std::optional<MethodReceiver> known;
    switch (e.object->kind) {
      case ExprKind::kString: case ExprKind::kInterpolation: known = MethodReceiver::kString; break;
      case ExprKind::kList: known = MethodReceiver::kList; break;
      case ExprKind::kMap:
        if (std::find(e.object->keys.begin(), e.object->keys.end(), e.text) != e.object->keys.end()) return;
        known = MethodReceiver::kMap;
        break;
      case ExprKind::kSpawn: known = MethodReceiver::kTask; break;
      default: return;
    }
    int id = FindMethod(*known, e.text);
    if (id < 0 || (e.text.starts_with("_") && !compiling_stdlib_)) {
      diags_->Error(e.loc, fmt::format("a {} has no method `{}`", ReceiverName(*known), e.text));
    } else if (std::string why = MethodArityError(GetMethodInfo(id), static_cast<int>(e.items.size())); !why.empty()) {
      diags_->Error(e.loc, why);
    }
  }

 public:
  // Adds the functions of stdlib/methods.flow for the methods written in Flow that the
  // program may call (by name: the receiver's type is known at run time), and those they
  // call in turn. A program that calls none pays nothing, not even the parse.
  void CompileFlowMethods() {
    // The names of methods written in Flow that code calls and that are not compiled yet.
    auto wanted = [&] {
      std::set<std::string> names;
      for (const std::string& name : called_methods_)
        if (IsFlowMethodName(name) && !compiled_methods_.count(name)) names.insert(name);
      return names;
    };
    std::set<std::string> this_pass = wanted();
    if (this_pass.empty()) return;
    Diagnostics lib_diags;
    ast::Program lib = ParseProgram("stdlib/methods.flow", kFlowMethodsSource, &lib_diags);
    if (lib_diags.HasErrors()) {
      diags_->Error({1, 1}, "internal compiler error: stdlib/methods.flow does not compile");
      return;
    }
    compiling_stdlib_ = true;
    FunctionState none;  // their enclosing state: they see builtins only
    state_ = &none;
    for (; !this_pass.empty(); this_pass = wanted()) {  // compiling them may call more
      for (const auto& s : lib.body.stmts) {
        if (s->kind != StmtKind::kFnDecl) continue;
        const size_t cut = s->name.find("__");
        const std::string method = s->name.substr(cut + 2);
        if (!this_pass.count(method)) continue;
        std::map<std::string, Loc> refs;
        CompileFunctionBody(*s->fn, &refs, nullptr, s->name.substr(0, cut) + "." + method);
      }
      // Every method of those names is compiled now, whichever receivers it has.
      compiled_methods_.insert(this_pass.begin(), this_pass.end());
    }
    state_ = nullptr;
    compiling_stdlib_ = false;
  }

 private:

  void CompileUnary(const Expr& e) {
    if (e.text == "-" && e.object->kind == ExprKind::kInt) {
      Emit(Op::CONST, IntConstant(-e.object->int_value));
      return;
    }
    CompileExpr(*e.object);
    MarkLine(e.loc);
    Emit(e.text == "-" ? Op::NEG : Op::NOT);
  }

  // The opcode of a binary operator as written (`+`, `<=`, ...), also that of `op=`.
  static Op BinaryOpcode(const std::string& op) {
    static const std::map<std::string, Op> kOps = {
        {"+", Op::ADD}, {"-", Op::SUB}, {"*", Op::MUL}, {"/", Op::DIV},
        {"%", Op::MOD}, {"==", Op::EQ}, {"!=", Op::NE}, {"<", Op::LT}, {"<=", Op::LE},
        {">", Op::GT}, {">=", Op::GE}};
    return kOps.at(op);
  }

  void CompileBinary(const Expr& e) {
    CompileExpr(*e.object);
    CompileExpr(*e.items[0]);
    MarkLine(e.loc);
    EmitBinary(BinaryOpcode(e.text));
  }

  // `&&`, `||` and `??`: the right side runs only when the left does not decide.
  void CompileLogical(const Expr& e) {
    CompileExpr(*e.object);
    Op jump = e.kind == ExprKind::kAnd ? Op::AND_JUMP : e.kind == ExprKind::kOr ? Op::OR_JUMP : Op::NONNULL_JUMP;
    uint32_t to_end = Emit(jump, 0);
    CompileExpr(*e.items[0]);
    PatchJump(to_end, Label());
  }

  void CompileStep(const Expr& e) {
    CompileExpr(*e.object);
    CompileGuardedBlock(e, Op::STEP_BEGIN, Op::STEP_END, e.bool_value ? 1 : 0);
  }

  void CompileRetry(const Expr& e) {
    if (e.object) {
      CompileExpr(*e.object);
    } else {
      CompileOptionMap(e, "retry", {"attempts", "backoff", "factor", "max_delay", "jitter", "on"});
    }
    CompileGuardedBlock(e, Op::RETRY_BEGIN, Op::RETRY_END);
  }

  void CompileTimeout(const Expr& e) {
    CompileExpr(*e.object);
    CompileGuardedBlock(e, Op::TIMEOUT_BEGIN, Op::TIMEOUT_END);
  }

  void CompileBreaker(const Expr& e) {
    // The hidden operand is [name, options].
    CompileExpr(*e.object);
    CompileOptionMap(e, "breaker", {"failures", "window", "cooldown"});
    Emit(Op::BUILD_LIST, 2);
    CompileGuardedBlock(e, Op::BREAKER_BEGIN, Op::BREAKER_END);
  }

  void CompileLimit(const Expr& e) {
    // The hidden operand is [name, options], as a breaker's.
    CheckLimitOptions(e);
    CompileExpr(*e.object);
    CompileOptionMap(e, "limit", {"concurrency", "rate", "per"});
    Emit(Op::BUILD_LIST, 2);
    CompileGuardedBlock(e, Op::LIMIT_BEGIN, Op::LIMIT_END);
  }

  // What can be known before the run: concurrency, or rate with per; literal values
  // positive ints (durations for per). Values computed at run time are checked then.
  void CheckLimitOptions(const Expr& e) {
    const ast::Option* given[3] = {nullptr, nullptr, nullptr};
    static const char* const kNames[3] = {"concurrency", "rate", "per"};
    for (const auto& o : e.options)
      for (int i = 0; i < 3; ++i)
        if (o.name == kNames[i]) given[i] = &o;
    for (const ast::Option* o : given) {
      if (!o) continue;
      const ExprKind k = o->value->kind;
      const bool literal = k == ExprKind::kInt || k == ExprKind::kFloat || k == ExprKind::kString ||
                           k == ExprKind::kBool || k == ExprKind::kNull || k == ExprKind::kList || k == ExprKind::kMap;
      if (literal && (k != ExprKind::kInt || o->value->int_value < 1))
        diags_->Error(o->value->loc, fmt::format("limit option `{}` must be a positive int{}", o->name,
                                                 o->name == "per" ? " (a duration: 1s, 500ms)" : ""));
    }
    if (given[1] && !given[2]) diags_->Error(given[1]->loc, "limit option `rate` needs `per` (rate: 10, per: 1s)");
    if (given[2] && !given[1]) diags_->Error(given[2]->loc, "limit option `per` needs `rate` (rate: 10, per: 1s)");
    if (!given[0] && !given[1] && !given[2])
      diags_->Error(e.loc, "a limit needs `concurrency: N`, or `rate: R, per: D`, or both");
  }

  // `spawn { ... }`: the block as a closure of no parameters, started as a task.
  void CompileSpawn(const Expr& e) {
    CompileFunction(*e.fn, nullptr, "spawn");
    MarkLine(e.loc);
    Emit(Op::SPAWN);
  }

  void CompileAwait(const Expr& e) {
    CompileExpr(*e.object);
    MarkLine(e.loc);
    Emit(Op::AWAIT);
  }

  // `parallel (options) for [i,] x in list { body }`: the body as a closure of (index,
  // item), the list, the options (a map, or null), the VM's state slot (null), PARALLEL.
  void CompileParallel(const Expr& e) {
    CompileFunction(*e.fn, nullptr, "parallel for");
    CompileExpr(*e.object);
    if (e.options.empty()) {
      Emit(Op::PUSH_NULL);
    } else {
      CompileOptionMap(e, "parallel", {"limit", "settle"});
    }
    Emit(Op::PUSH_NULL);
    MarkLine(e.loc);
    Emit(Op::PARALLEL, 0);
  }

  // A block's `name: value` options as a map; an unknown or repeated name is an error.
  void CompileOptionMap(const Expr& e, const char* what, const std::vector<std::string>& known) {
    std::set<std::string> seen;
    for (const auto& o : e.options) {
      if (std::find(known.begin(), known.end(), o.name) == known.end())
        diags_->Error(o.loc, fmt::format("unknown {} option `{}` ({})", what, o.name, fmt::join(known, ", ")));
      if (!seen.insert(o.name).second) diags_->Error(o.loc, fmt::format("{} option `{}` given twice", what, o.name));
      Emit(Op::CONST, StringConstant(o.name));
      CompileExpr(*o.value);
    }
    Emit(Op::BUILD_MAP, static_cast<uint32_t>(e.options.size()));
  }

  void CheckCount(size_t n, Loc loc) {
    if (n > 0xffff) diags_->Error(loc, "too many elements in one literal (at most 65535)");
  }

  Module* m_;
  Diagnostics* diags_;
  const CompileOptions& options_;
  std::vector<std::string> tests_found_;
  const std::vector<ImportUnit>* units_ = nullptr;
  std::vector<std::string> prefixes_;  // by file: what its globals' names start with
  uint16_t file_ = 0;                  // the file being compiled
  FunctionState* state_ = nullptr;
  uint32_t line_ = 1;
  std::unordered_map<std::string, uint32_t> constant_index_;
  std::unordered_map<std::string, uint16_t> globals_;
  std::set<std::string> pending_globals_;
  SymbolIndex* symbols_ = nullptr;                     // CompileOptions::symbols
  std::unordered_map<std::string, int> global_decls_;  // a global's SymbolDecl
  std::map<std::pair<uint16_t, std::string>, int> import_decls_;  // (file, alias) -> its SymbolDecl
  std::vector<Loc> scope_ends_;                        // of the blocks being compiled, innermost last
  std::set<std::string> called_methods_;    // names after a dot in a call: `xs.map(f)`
  std::set<std::string> compiled_methods_;  // of stdlib/methods.flow, by method name
  bool compiling_stdlib_ = false;
  std::map<std::string, TopLet> top_lets_;
  // The globals named by each top-level function and each `let f = fn...` compiled so far.
  std::map<std::string, std::map<std::string, Loc>> callee_refs_;
  std::map<std::string, Loc> last_fn_refs_;  // of the last anonymous function in top-level code
  bool anonymous_defers_ = false;            // compiling `let f = fn...` at the top level
};

}  // namespace

bool CompileProgram(std::vector<SourceFile>* files, const SourceReader& read, Module* module, Diagnostics* diags,
                    const CompileOptions& options) {
  std::vector<ImportUnit> units;
  std::vector<uint16_t> order;
  if (!ParseWithImports(files, read, diags, &units, &order, options.parse_cache)) return false;
  Codegen codegen(module, diags, options);
  codegen.CompileFiles(*files, units, order);
  if (options.symbols) options.symbols->filled = true;
  if (options.tests) *options.tests = codegen.tests_found();
  if (diags->HasErrors()) return false;
  codegen.CompileFlowMethods();
  if (diags->HasErrors()) return false;
  Status verified = VerifyModule(*module);
  if (!verified.ok()) {
    // A compiler bug, not the user's: say so plainly.
    diags->set_file(0);
    diags->Error({1, 1}, "internal compiler error: " + verified.message());
    return false;
  }
  return true;
}

bool CompileSource(const std::string& file, const std::string& source, Module* module, Diagnostics* diags) {
  std::vector<SourceFile> files = {{file, file, source}};
  auto no_files = [](const std::string& path, std::string*, std::string* error) {
    *error = "this program was given as text, not as a file, so it cannot import";
    return false;
  };
  return CompileProgram(&files, no_files, module, diags);
}

}  // namespace flow
