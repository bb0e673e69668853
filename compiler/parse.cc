// Drives the generated ANTLR parser and turns its tree into the AST (compiler/ast.h).
// ANTLR's exceptions and types stay in this file.
#include "compiler/parse.h"

#include <fmt/format.h>

#include <sys/resource.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <typeinfo>
#include <vector>

#include "Flow.h"
#include "FlowLexer.h"
#include "antlr4-runtime.h"
#include "compiler/lexer.h"
#include "vm/base/utf8.h"

namespace flow {

namespace {

// `ctx` as the context of one labelled alternative (`# letStmt`: Flow::LetStmtContext), or
// null. Each such class is a leaf, so comparing the dynamic type is enough: far cheaper than
// dynamic_cast, which walks the class graph, and the tree builder asks once per alternative
// of every node (a fifth of a compile, measured by bench/compile_bench.py).
template <typename Alternative, typename Context>
Alternative* As(Context* ctx) {
  return typeid(*ctx) == typeid(Alternative) ? static_cast<Alternative*>(ctx) : nullptr;
}

using ast::Expr;
using ast::ExprKind;
using ast::ExprPtr;
using ast::Loc;
using ast::Stmt;
using ast::StmtKind;
using ast::StmtPtr;

Loc LocOf(antlr4::Token* t) {
  return {static_cast<uint32_t>(t->getLine()), static_cast<uint32_t>(t->getCharPositionInLine() + 1)};
}
Loc LocOf(antlr4::ParserRuleContext* ctx) { return LocOf(ctx->getStart()); }

// Collects syntax errors, at most one per line so one mistake does not cascade.
class ErrorCollector : public antlr4::BaseErrorListener {
 public:
  explicit ErrorCollector(Diagnostics* diags) : diags_(diags) {}

  // A token as a message quotes it: a long one (a 10 MB string) is cut.
  static std::string Abbreviate(const std::string& text) {
    constexpr size_t kMax = 40;
    if (text.size() <= kMax) return text;
    size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // whole characters
    return text.substr(0, cut) + "...";
  }

  // ANTLR's messages list every token it could have taken; say what was found instead.
  static std::string Reword(const std::string& msg, antlr4::Token* offending) {
    std::string found;
    if (offending) found = offending->getType() == antlr4::Token::EOF ? "end of file" : "`" + Abbreviate(offending->getText()) + "`";
    if (msg.rfind("missing ", 0) == 0) {
      size_t at = msg.find(" at ");
      std::string what = msg.substr(8, at == std::string::npos ? std::string::npos : at - 8);
      return fmt::format("missing {} before {}", what, found.empty() ? "this" : found);
    }
    if (found.empty()) return msg;
    size_t expecting = msg.find("expecting ");
    if (expecting != std::string::npos && msg.find('{', expecting) == std::string::npos)
      return fmt::format("unexpected {}, expected {}", found, msg.substr(expecting + 10));
    if (expecting != std::string::npos) {
      std::string few = FewLiterals(msg.substr(expecting + 10));
      if (!few.empty()) return fmt::format("unexpected {}, expected {}", found, few);
    }
    return fmt::format("unexpected {}", found);
  }

  // ANTLR's set `{',', 'in'}` as "',' or 'in'" when it is a few literal tokens (`for x
  // [1]` lacks an `in`); "" for a longer set or one with token names, which say little.
  static std::string FewLiterals(const std::string& set) {
    constexpr size_t kMaxShown = 3;
    if (set.size() < 2 || set.front() != '{' || set.back() != '}') return "";
    std::vector<std::string> items;
    std::string rest = set.substr(1, set.size() - 2);
    for (size_t start = 0; start <= rest.size();) {
      size_t comma = rest.find(", ", start);
      std::string item = rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (item.size() < 3 || item.front() != '\'' || item.back() != '\'') return "";
      items.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 2;
    }
    if (items.empty() || items.size() > kMaxShown) return "";
    std::string out = items[0];
    for (size_t i = 1; i < items.size(); ++i) out += (i + 1 == items.size() ? " or " : ", ") + items[i];
    return out;
  }
  void syntaxError(antlr4::Recognizer*, antlr4::Token* offending, size_t line, size_t col,
                   const std::string& msg, std::exception_ptr) override {
    if (!lines_.insert(line).second) return;
    Loc where{static_cast<uint32_t>(line), static_cast<uint32_t>(col + 1)};
    std::string message = Reword(msg, offending);
    if (offending && offending->getType() == FlowLexer::BAD_CHAR)
      message = fmt::format("unexpected character `{}`", Abbreviate(offending->getText()));
    else if (offending && offending->getType() == FlowLexer::STR_NEWLINE) {
      message = "unterminated string (a string ends on its line; write \\n for a newline)";
      auto start = string_starts_.find(offending->getTokenIndex());
      if (start != string_starts_.end()) where = start->second;  // where the string opens
    }
    else if (offending && offending->getType() == antlr4::Token::EOF && msg.find("'\"'") != std::string::npos)
      message = "unterminated string";
    diags_->Error(where, message);
  }

  // The string that the line end at token `newline` leaves unterminated opens at `start`.
  void StringStartsAt(size_t newline, Loc start) { string_starts_[newline] = start; }

 private:
  Diagnostics* diags_;
  std::set<size_t> lines_;
  std::map<size_t, Loc> string_starts_;
};

// Expressions nested deeper than this (counting every operator, call, field and index,
// not only brackets) are refused, so that the recursive passes over the tree stay well
// inside the C++ stack. A chain of 1,000 `+` is far beyond what a person writes.
constexpr int kMaxExpressionDepth = 1000;

class AstBuilder {
 public:
  explicit AstBuilder(Diagnostics* diags) : diags_(diags) {}

  void BuildBlockInto(std::vector<Flow::StmtContext*> stmts, ast::Block* block) {
    for (auto* s : stmts) {
      StmtPtr st = BuildStmt(s);
      if (st) block->stmts.push_back(std::move(st));
    }
  }

  std::unique_ptr<ast::Block> BuildBlock(Flow::BlockContext* ctx) {
    auto block = std::make_unique<ast::Block>();
    if (!ctx) return block;
    block->loc = LocOf(ctx);
    block->end = LocOf(ctx->getStop());
    BuildBlockInto(ctx->stmt(), block.get());
    return block;
  }

 private:
  StmtPtr NewStmt(StmtKind kind, antlr4::ParserRuleContext* ctx) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->loc = LocOf(ctx);
    return s;
  }
  ExprPtr NewExpr(ExprKind kind, Loc loc) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->loc = loc;
    return e;
  }

  std::shared_ptr<ast::FnDef> BuildFn(std::string name, Loc loc, Flow::ParamsContext* params, Flow::BlockContext* body) {
    auto fn = std::make_shared<ast::FnDef>();
    fn->name = std::move(name);
    fn->loc = loc;
    if (params) {
      for (auto* id : params->IDENT()) {
        fn->params.push_back(id->getText());
        fn->param_locs.push_back(LocOf(id->getSymbol()));
      }
    }
    if (body) {
      fn->body.loc = LocOf(body);
      fn->body.end = LocOf(body->getStop());
      BuildBlockInto(body->stmt(), &fn->body);
    }
    return fn;
  }

  StmtPtr BuildStmt(Flow::StmtContext* ctx) {
    if (auto* c = As<Flow::LetStmtContext>(ctx)) {
      auto s = NewStmt(StmtKind::kLet, ctx);
      s->name = c->IDENT()->getText();
      s->name_loc = LocOf(c->IDENT()->getSymbol());
      s->expr = BuildExpr(c->expr());
      return s;
    }
    if (auto* c = As<Flow::FnDeclContext>(ctx)) {
      auto s = NewStmt(StmtKind::kFnDecl, ctx);
      s->name = c->IDENT()->getText();
      s->name_loc = LocOf(c->IDENT()->getSymbol());
      s->fn = BuildFn(s->name, s->name_loc, c->params(), c->block());
      return s;
    }
    if (auto* c = As<Flow::IfStatementContext>(ctx)) return BuildIf(c->ifStmt());
    if (auto* c = As<Flow::WhileStmtContext>(ctx)) {
      auto s = NewStmt(StmtKind::kWhile, ctx);
      s->expr = BuildExpr(c->expr());
      s->body = BuildBlock(c->block());
      return s;
    }
    if (auto* c = As<Flow::ForStmtContext>(ctx)) {
      auto s = NewStmt(StmtKind::kFor, ctx);
      auto ids = c->IDENT();
      if (!ids.empty()) {
        s->name = ids[0]->getText();
        s->name_loc = LocOf(ids[0]->getSymbol());
      }
      if (ids.size() > 1) {
        s->name2 = ids[1]->getText();
        s->name2_loc = LocOf(ids[1]->getSymbol());
      }
      s->expr = BuildExpr(c->expr());
      s->body = BuildBlock(c->block());
      return s;
    }
    if (As<Flow::BreakStmtContext>(ctx)) return NewStmt(StmtKind::kBreak, ctx);
    if (As<Flow::ContinueStmtContext>(ctx)) return NewStmt(StmtKind::kContinue, ctx);
    if (auto* c = As<Flow::ReturnStmtContext>(ctx)) {
      auto s = NewStmt(StmtKind::kReturn, ctx);
      if (c->expr()) s->expr = BuildExpr(c->expr());
      return s;
    }
    if (auto* c = As<Flow::ThrowStmtContext>(ctx)) {
      auto s = NewStmt(StmtKind::kThrow, ctx);
      s->expr = BuildExpr(c->expr());
      return s;
    }
    if (auto* c = As<Flow::TryStmtContext>(ctx)) {
      auto s = NewStmt(StmtKind::kTry, ctx);
      s->body = BuildBlock(c->block(0));
      size_t next = 1;
      if (c->CATCH()) {
        s->name = c->IDENT()->getText();
        s->name_loc = LocOf(c->IDENT()->getSymbol());
        s->else_body = BuildBlock(c->block(next++));
      }
      if (c->FINALLY()) s->finally_body = BuildBlock(c->block(next));
      if (!c->CATCH() && !c->FINALLY()) diags_->Error(s->loc, "`try` needs a `catch e { }`, a `finally { }`, or both");
      return s;
    }
    if (auto* c = As<Flow::ImportStmtContext>(ctx)) return BuildImport(c);
    if (auto* c = As<Flow::TestStmtContext>(ctx)) return BuildTest(c);
    if (auto* c = As<Flow::BlockStmtContext>(ctx)) {
      auto s = NewStmt(StmtKind::kBlock, ctx);
      s->body = BuildBlock(c->block());
      return s;
    }
    if (auto* c = As<Flow::ExprStmtContext>(ctx)) {
      if (!c->assign) {
        auto s = NewStmt(StmtKind::kExpr, ctx);
        s->expr = BuildExpr(c->expr(0));
        return s;
      }
      auto s = NewStmt(StmtKind::kAssign, ctx);
      if (c->assign->getType() != FlowLexer::ASSIGN) s->assign_op = c->assign->getText().substr(0, 1);
      s->target = BuildExpr(c->expr(0));
      s->expr = BuildExpr(c->expr(1));
      if (s->target && s->target->kind != ExprKind::kName && s->target->kind != ExprKind::kField &&
          s->target->kind != ExprKind::kIndex) {
        diags_->Error(s->target->loc, "cannot assign to this expression (only to a name, `a.field` or `a[index]`)");
      }
      return s;
    }
    return nullptr;  // empty statement, or a piece the parser already reported
  }

  StmtPtr BuildIf(Flow::IfStmtContext* c) {
    auto s = NewStmt(StmtKind::kIf, c);
    auto conds = c->expr();
    auto blocks = c->block();
    for (size_t i = 0; i < conds.size(); ++i) {
      s->branches.push_back({BuildExpr(conds[i]), BuildBlock(i < blocks.size() ? blocks[i] : nullptr)});
    }
    if (blocks.size() > conds.size()) s->else_body = BuildBlock(blocks.back());
    return s;
  }

  std::vector<ExprPtr> BuildArgs(Flow::ArgsContext* args) {
    std::vector<ExprPtr> out;
    if (args)
      for (auto* e : args->expr()) out.push_back(BuildExpr(e));
    return out;
  }

  // Counts the expressions being built, one inside the other, for kMaxExpressionDepth.
  struct DepthGuard {
    explicit DepthGuard(int* depth) : depth_(depth) { ++*depth_; }
    ~DepthGuard() { --*depth_; }
    int* depth_;
  };

  // True (reported once) when the expression being built is nested too deep.
  bool TooDeep(Loc loc) {
    if (expr_depth_ <= kMaxExpressionDepth) return false;
    if (!reported_too_deep_)
      diags_->Error(loc, fmt::format("expression nesting too deep (more than {} levels); split it into smaller "
                                     "expressions with `let`", kMaxExpressionDepth));
    reported_too_deep_ = true;
    return true;
  }

  ExprPtr BuildExpr(Flow::ExprContext* ctx) {
    if (!ctx) return NewExpr(ExprKind::kNull, {});
    Loc loc = LocOf(ctx);
    // A flat chain (`1 + 1 + ...`, `a.b.c...`, `f()()...`) is as deep in the tree as it is
    // long, and every pass over the tree recurses: stop building at the limit, so that no
    // pass can exhaust the C++ stack.
    DepthGuard guard(&expr_depth_);
    if (TooDeep(loc)) return NewExpr(ExprKind::kNull, loc);
    if (auto* c = As<Flow::PrimaryExprContext>(ctx)) return BuildPrimary(c->primary());
    if (auto* c = As<Flow::MethodExprContext>(ctx)) {
      auto e = NewExpr(ExprKind::kMethod, LocOf(c->name()));
      e->object = BuildExpr(c->expr());
      e->text = c->name()->getText();
      e->items = BuildArgs(c->args());
      return e;
    }
    if (auto* c = As<Flow::FieldExprContext>(ctx)) {
      auto e = NewExpr(ExprKind::kField, LocOf(c->name()));
      e->object = BuildExpr(c->expr());
      e->text = c->name()->getText();
      return e;
    }
    if (auto* c = As<Flow::IndexExprContext>(ctx)) {
      auto e = NewExpr(ExprKind::kIndex, LocOf(c->LBRACK()->getSymbol()));
      e->object = BuildExpr(c->expr(0));
      e->items.push_back(BuildExpr(c->expr(1)));
      return e;
    }
    if (auto* c = As<Flow::CallExprContext>(ctx)) {
      auto e = NewExpr(ExprKind::kCall, loc);
      e->object = BuildExpr(c->expr());
      e->items = BuildArgs(c->args());
      return e;
    }
    if (auto* c = As<Flow::UnaryExprContext>(ctx)) {
      // Fold `-literal` so that the most negative integer can be written.
      auto operand = BuildExpr(c->expr());
      if (c->op->getType() == FlowLexer::MINUS && operand->kind == ExprKind::kFloat) {
        operand->float_value = -operand->float_value;
        operand->loc = loc;
        return operand;
      }
      if (c->op->getType() == FlowLexer::AWAIT) {
        auto e = NewExpr(ExprKind::kAwait, loc);
        e->object = std::move(operand);
        return e;
      }
      auto e = NewExpr(ExprKind::kUnary, loc);
      e->text = c->op->getText();
      e->object = std::move(operand);
      return e;
    }
    if (auto* c = As<Flow::BinaryExprContext>(ctx)) {
      auto e = NewExpr(ExprKind::kBinary, LocOf(c->op));
      e->text = c->op->getText();
      e->object = BuildExpr(c->expr(0));
      e->items.push_back(BuildExpr(c->expr(1)));
      return e;
    }
    if (auto* c = As<Flow::LogicalExprContext>(ctx)) {
      const size_t type = c->op->getType();
      auto e = NewExpr(type == FlowLexer::AND ? ExprKind::kAnd : type == FlowLexer::OR ? ExprKind::kOr : ExprKind::kCoalesce,
                       LocOf(c->op));
      e->object = BuildExpr(c->expr(0));
      e->items.push_back(BuildExpr(c->expr(1)));
      return e;
    }
    return NewExpr(ExprKind::kNull, loc);
  }

  std::vector<ast::Option> BuildOptions(std::vector<Flow::OptionContext*> options) {
    std::vector<ast::Option> out;
    for (auto* o : options) {
      ast::Option opt;
      opt.name = o->name()->getText();
      opt.loc = LocOf(o);
      opt.value = BuildExpr(o->expr());
      out.push_back(std::move(opt));
    }
    return out;
  }

  ExprPtr BuildPrimary(Flow::PrimaryContext* ctx) {
    Loc loc = LocOf(ctx);
    if (auto* c = As<Flow::IntLitContext>(ctx)) {
      auto e = NewExpr(ExprKind::kInt, loc);
      e->int_value = ParseInt(c->getText(), loc, 1);
      return e;
    }
    if (auto* c = As<Flow::FloatLitContext>(ctx)) {
      auto e = NewExpr(ExprKind::kFloat, loc);
      std::string text;
      for (char ch : c->getText())
        if (ch != '_') text += ch;
      e->float_value = std::strtod(text.c_str(), nullptr);
      if (std::isinf(e->float_value)) diags_->Error(loc, "float literal is too large");
      return e;
    }
    if (auto* c = As<Flow::DurationLitContext>(ctx)) {
      std::string text = c->getText();
      int64_t unit = 1;
      size_t digits = text.size();
      if (text.size() >= 2 && text.compare(text.size() - 2, 2, "ms") == 0) {
        digits -= 2;
      } else {
        char u = text.back();
        digits -= 1;
        unit = u == 's' ? 1000 : u == 'm' ? 60'000 : u == 'h' ? 3'600'000 : 86'400'000;
      }
      auto e = NewExpr(ExprKind::kInt, loc);
      e->int_value = ParseInt(text.substr(0, digits), loc, unit);
      return e;
    }
    if (auto* c = As<Flow::StringLitContext>(ctx)) return BuildString(c->string());
    if (As<Flow::TrueLitContext>(ctx) || As<Flow::FalseLitContext>(ctx)) {
      auto e = NewExpr(ExprKind::kBool, loc);
      e->bool_value = As<Flow::TrueLitContext>(ctx) != nullptr;
      return e;
    }
    if (As<Flow::NullLitContext>(ctx)) return NewExpr(ExprKind::kNull, loc);
    if (auto* c = As<Flow::NameRefContext>(ctx)) {
      auto e = NewExpr(ExprKind::kName, loc);
      e->text = c->IDENT()->getText();
      return e;
    }
    if (auto* c = As<Flow::ParenExprContext>(ctx)) return BuildExpr(c->expr());
    if (auto* c = As<Flow::ListLitContext>(ctx)) {
      auto e = NewExpr(ExprKind::kList, loc);
      for (auto* item : c->expr()) e->items.push_back(BuildExpr(item));
      return e;
    }
    if (auto* c = As<Flow::MapLitContext>(ctx)) {
      auto e = NewExpr(ExprKind::kMap, loc);
      std::set<std::string> seen;
      for (auto* entry : c->entry()) {
        std::string key;
        if (entry->name()) {
          key = entry->name()->getText();
        } else {
          ExprPtr k = BuildString(entry->string());
          if (k->kind != ExprKind::kString) {
            diags_->Error(k->loc, "a map key in a literal cannot be interpolated; build the map with m[key] = v");
          }
          key = k->text;
        }
        if (!seen.insert(key).second) diags_->Error(LocOf(entry), fmt::format("duplicate key `{}` in map literal", key));
        e->keys.push_back(key);
        e->items.push_back(BuildExpr(entry->expr()));
      }
      return e;
    }
    if (auto* c = As<Flow::FnExprContext>(ctx)) {
      auto e = NewExpr(ExprKind::kFunction, loc);
      e->fn = BuildFn("", loc, c->params(), c->block());
      return e;
    }
    if (auto* c = As<Flow::StepExprContext>(ctx)) {
      auto e = NewExpr(ExprKind::kStep, loc);
      e->object = BuildExpr(c->expr());
      e->bool_value = c->ONCE() != nullptr;
      e->block = BuildBlock(c->block());
      return e;
    }
    if (auto* c = As<Flow::RetryOptsExprContext>(ctx)) {
      auto e = NewExpr(ExprKind::kRetry, loc);
      e->options = BuildOptions(c->option());
      e->block = BuildBlock(c->block());
      return e;
    }
    if (auto* c = As<Flow::RetryExprContext>(ctx)) {
      auto e = NewExpr(ExprKind::kRetry, loc);
      e->object = BuildExpr(c->expr());
      e->block = BuildBlock(c->block());
      return e;
    }
    if (auto* c = As<Flow::TimeoutExprContext>(ctx)) {
      auto e = NewExpr(ExprKind::kTimeout, loc);
      e->object = BuildExpr(c->expr());
      e->block = BuildBlock(c->block());
      return e;
    }
    if (auto* c = As<Flow::BreakerExprContext>(ctx)) {
      DepthGuard guard(&expr_depth_);  // its name is a primary, built without BuildExpr
      if (TooDeep(loc)) return NewExpr(ExprKind::kNull, loc);
      auto e = NewExpr(ExprKind::kBreaker, loc);
      e->object = BuildPrimary(c->primary());
      e->options = BuildOptions(c->option());
      e->block = BuildBlock(c->block());
      return e;
    }
    if (auto* c = As<Flow::LimitExprContext>(ctx)) return BuildLimit(c, loc);
    if (auto* c = As<Flow::SpawnExprContext>(ctx)) {
      auto e = NewExpr(ExprKind::kSpawn, loc);
      e->fn = BuildFn("spawn", loc, nullptr, c->block());
      e->fn->returns_block_value = true;
      return e;
    }
    if (auto* c = As<Flow::ParallelExprContext>(ctx)) return BuildParallel(c, loc);
    return NewExpr(ExprKind::kNull, loc);
  }

  // `limit NAME (options) { body }`: NAME is a name (`limit api`), or a string (`limit
  // "api-${region}"`).
  // `import "path" as name`; the path is a plain string (no `${}`).
  StmtPtr BuildImport(Flow::ImportStmtContext* c) {
    auto s = NewStmt(StmtKind::kImport, c);
    auto ids = c->IDENT();
    s->name = ids[2]->getText();
    s->name_loc = LocOf(ids[2]->getSymbol());
    s->expr = BuildString(c->string());
    if (ids[0]->getText() != "import" || ids[1]->getText() != "as") {
      diags_->Error(LocOf(ids[0]->getSymbol()), fmt::format("unexpected `{}` before a string: write `import \"file.flow\" as name`",
                                                           ids[0]->getText() != "import" ? ids[0]->getText() : ids[1]->getText()));
    } else if (s->expr->kind != ExprKind::kString) {
      diags_->Error(s->expr->loc, "an import's path is a plain string, without `${}`");
    }
    return s;
  }

  // `test "name" { body }`: the body becomes a function of no parameters named `test "name"`
  // (what its stack traces show).
  StmtPtr BuildTest(Flow::TestStmtContext* c) {
    auto s = NewStmt(StmtKind::kTest, c);
    ExprPtr name = BuildString(c->string());
    if (c->IDENT()->getText() != "test") {
      diags_->Error(LocOf(c->IDENT()->getSymbol()),
                    fmt::format("unexpected `{}` before a string and a block: write `test \"name\" {{ ... }}`", c->IDENT()->getText()));
    } else if (name->kind != ExprKind::kString) {
      diags_->Error(name->loc, "a test's name is a plain string, without `${}`");
    }
    s->name = name->text;
    s->name_loc = name->loc;
    s->fn = BuildFn(fmt::format("test \"{}\"", s->name), s->loc, nullptr, c->block());
    return s;
  }

  ExprPtr BuildLimit(Flow::LimitExprContext* c, Loc loc) {
    if (c->IDENT(0)->getText() != "limit") {
      diags_->Error(LocOf(c->IDENT(0)->getSymbol()),
                    fmt::format("unexpected `{}` before `{}`: only `limit` opens a block so", c->IDENT(0)->getText(),
                                c->IDENT().size() > 1 ? c->IDENT(1)->getText() : "\"...\""));
      return NewExpr(ExprKind::kNull, loc);
    }
    auto e = NewExpr(ExprKind::kLimit, loc);
    if (c->IDENT().size() > 1) {
      e->object = NewExpr(ExprKind::kString, LocOf(c->IDENT(1)->getSymbol()));
      e->object->text = c->IDENT(1)->getText();
    } else {
      e->object = BuildString(c->string());
    }
    e->options = BuildOptions(c->option());
    e->block = BuildBlock(c->block());
    return e;
  }

  // `parallel (options) for [i,] x in list { body }`: the body becomes a function of
  // (index, item); without `i`, the index parameter has a name no program can write.
  ExprPtr BuildParallel(Flow::ParallelExprContext* c, Loc loc) {
    auto e = NewExpr(ExprKind::kParallel, loc);
    e->fn = BuildFn("parallel", loc, nullptr, c->block());
    e->fn->returns_block_value = true;
    auto ids = c->IDENT();
    if (ids.size() == 1) {
      e->fn->params.push_back("(index)");
      e->fn->param_locs.push_back(loc);
    }
    for (auto* id : ids) {
      e->fn->params.push_back(id->getText());
      e->fn->param_locs.push_back(LocOf(id->getSymbol()));
    }
    e->object = BuildExpr(c->expr());
    e->options = BuildOptions(c->option());
    return e;
  }

  int64_t ParseInt(const std::string& text, Loc loc, int64_t unit) {
    int64_t v = 0;
    for (char ch : text) {
      if (ch == '_') continue;
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, ch - '0', &v)) {
        diags_->Error(loc, "integer literal is too large (the largest int is 9223372036854775807)");
        return 0;
      }
    }
    if (__builtin_mul_overflow(v, unit, &v)) {
      diags_->Error(loc, "duration literal is too large");
      return 0;
    }
    return v;
  }

  ExprPtr BuildString(Flow::StringContext* ctx) {
    Loc loc = LocOf(ctx);
    std::vector<ExprPtr> parts;
    std::string pending;
    bool interpolated = false;
    for (auto* part : ctx->stringPart()) {
      if (auto* t = As<Flow::TextPartContext>(part)) {
        pending += t->getText();
      } else if (auto* esc = As<Flow::EscapePartContext>(part)) {
        DecodeEscape(esc->getText(), LocOf(esc), &pending);
      } else if (auto* in = As<Flow::InterpPartContext>(part)) {
        interpolated = true;
        if (!pending.empty()) {
          auto s = NewExpr(ExprKind::kString, loc);
          s->text = std::move(pending);
          pending.clear();
          parts.push_back(std::move(s));
        }
        parts.push_back(BuildExpr(in->expr()));
      }
    }
    if (!interpolated) {
      auto e = NewExpr(ExprKind::kString, loc);
      e->text = std::move(pending);
      return e;
    }
    if (!pending.empty()) {
      auto s = NewExpr(ExprKind::kString, loc);
      s->text = std::move(pending);
      parts.push_back(std::move(s));
    }
    auto e = NewExpr(ExprKind::kInterpolation, loc);
    e->items = std::move(parts);
    return e;
  }

  void DecodeEscape(const std::string& text, Loc loc, std::string* out) {
    if (text.size() < 2) {
      diags_->Error(loc, "unfinished escape at the end of the line");
      return;
    }
    char c = text[1];
    switch (c) {
      case 'n': out->push_back('\n'); return;
      case 't': out->push_back('\t'); return;
      case 'r': out->push_back('\r'); return;
      case '0': out->push_back('\0'); return;
      case '\\': case '"': case '$': case '\'': out->push_back(c); return;
      case 'u': {
        std::string hex = text.substr(2);
        if (!hex.empty() && hex.front() == '{') hex = hex.substr(1, hex.size() - 2);
        uint32_t cp = 0;
        bool ok = !hex.empty() && hex.size() <= 6;
        for (char h : hex) cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
        if (!ok || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
          diags_->Error(loc, fmt::format("invalid unicode escape `{}`", text));
          return;
        }
        AppendUtf8(out, cp);
        return;
      }
      default:
        diags_->Error(loc, fmt::format("unknown escape `{}`", text));
    }
  }

  Diagnostics* diags_;
  int expr_depth_ = 0;  // expressions being built, one inside the other
  bool reported_too_deep_ = false;
};

// Thrown when the parser nests deeper than its share of the C++ stack.
struct ParserTooDeep : std::runtime_error {
  ParserTooDeep() : std::runtime_error("nesting too deep") {}
};

uintptr_t StackAddress() { return reinterpret_cast<uintptr_t>(__builtin_frame_address(0)); }

// Half the stack the process may have (at most 8 MiB): what the parser may use.
size_t ParserStackBudget() {
  constexpr size_t kAssumed = 8u << 20;
  rlimit limit{};
  size_t stack = getrlimit(RLIMIT_STACK, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                     ? std::min<size_t>(limit.rlim_cur, kAssumed) : kAssumed;
  return stack / 2;
}

// The generated parser recurses once per rule it enters, and some input nests without
// brackets (`retry retry retry ... 1 {} {} {}`, 50,000 times). Rather than guess a depth
// per construct, it measures the C++ stack it has used and stops well before the end.
class StackGuardedParser : public Flow {
 public:
  explicit StackGuardedParser(antlr4::TokenStream* input)
      : Flow(input), base_(StackAddress()), budget_(ParserStackBudget()) {}

  void enterRule(antlr4::ParserRuleContext* ctx, size_t state, size_t rule) override {
    CheckStack();
    Flow::enterRule(ctx, state, rule);
  }
  void enterRecursionRule(antlr4::ParserRuleContext* ctx, size_t rule) override {
    CheckStack();
    Flow::enterRecursionRule(ctx, rule);
  }
  void enterRecursionRule(antlr4::ParserRuleContext* ctx, size_t state, size_t rule, int precedence) override {
    CheckStack();
    Flow::enterRecursionRule(ctx, state, rule, precedence);
  }

 private:
  void CheckStack() const {
    uintptr_t here = StackAddress();
    if (here < base_ && base_ - here > budget_) throw ParserTooDeep();  // the stack grows down
  }
  uintptr_t base_;
  size_t budget_;
};

// Parses with SLL prediction first, which is linear and enough for almost every program,
// and only if that fails again with full LL, which also reports the errors (the
// two-stage strategy ANTLR's authors recommend). Full LL alone spends most of its time
// in prediction, growing with the input on long chains.
Flow::ProgramContext* ParseTwoStage(Flow* parser, antlr4::CommonTokenStream* tokens, antlr4::ANTLRErrorListener* errors) {
  auto* simulator = parser->getInterpreter<antlr4::atn::ParserATNSimulator>();
  parser->removeErrorListeners();
  parser->setErrorHandler(std::make_shared<antlr4::BailErrorStrategy>());
  simulator->setPredictionMode(antlr4::atn::PredictionMode::SLL);
  try {
    return parser->program();
  } catch (const antlr4::ParseCancellationException&) {
  }
  tokens->seek(0);
  parser->reset();
  parser->addErrorListener(errors);
  parser->setErrorHandler(std::make_shared<antlr4::DefaultErrorStrategy>());
  simulator->setPredictionMode(antlr4::atn::PredictionMode::LL);
  return parser->program();
}

// Whether `text` is one whole expression, as the parser reads one.
bool IsExpression(const std::string& text) {
  antlr4::ANTLRInputStream input(text);
  FlowLexer lexer(&input);
  lexer.removeErrorListeners();
  antlr4::CommonTokenStream tokens(&lexer);
  StackGuardedParser parser(&tokens);
  parser.removeErrorListeners();
  parser.setErrorHandler(std::make_shared<antlr4::BailErrorStrategy>());
  try {
    parser.expr();
    return parser.getCurrentToken()->getType() == antlr4::Token::EOF;
  } catch (const antlr4::ParseCancellationException&) {
    return false;
  } catch (const ParserTooDeep&) {
    return false;
  }
}

// Whether a `//` comment would silently hide code: it follows a value on its line, and its
// text up to a `;` is an expression, as in Python's floored division `let q = a // b;
// print(q)`. Flow has no `//` operator, so that line would be `let q = a`, and the print
// would not run. (Prose such as `// all, in order; then ...` is not an expression.)
bool CommentHidesCode(antlr4::Token* before, antlr4::Token* comment) {
  if (before == nullptr || before->getLine() != comment->getLine()) return false;
  switch (before->getType()) {
    case FlowLexer::IDENT: case FlowLexer::INT: case FlowLexer::FLOAT: case FlowLexer::DURATION:
    case FlowLexer::TRUE: case FlowLexer::FALSE: case FlowLexer::NULL_:
    case FlowLexer::RPAREN: case FlowLexer::RBRACK: case FlowLexer::STR_END:
      break;
    default:
      return false;
  }
  const std::string text = comment->getText();
  size_t semicolon = text.find(';');
  return semicolon != std::string::npos && IsExpression(text.substr(2, semicolon - 2));
}

// The line and column of the first byte that is not valid UTF-8, if any.
bool FindInvalidUtf8(const std::string& s, Loc* where) {
  size_t at = flow::FindInvalidUtf8(s);
  if (at == std::string_view::npos) return false;
  uint32_t line = 1, col = 1;
  for (size_t i = 0; i < at; ++i) {
    if (s[i] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      ++col;
    }
  }
  *where = {line, col};
  return true;
}

}  // namespace

// Brackets nested deeper than this are refused before parsing, so that hostile input cannot
// exhaust the C++ stack of the recursive-descent parser or of the passes after it.
constexpr int kMaxNesting = 200;

ast::Program ParseProgram(const std::string& file, const std::string& source, Diagnostics* diags) {
  ast::Program program;
  program.file = file;
  Loc bad;
  if (FindInvalidUtf8(source, &bad)) {
    diags->Error(bad, "invalid UTF-8 in the source file");
    return program;
  }
  try {
    // A `#!` first line is ignored (emptied: line numbers stay), so that
    // `#!/usr/bin/env -S flow run` scripts run directly.
    const std::string_view text = source.rfind("#!", 0) == 0
                                      ? std::string_view(source).substr(std::min(source.find('\n'), source.size()))
                                      : std::string_view(source);
    antlr4::ANTLRInputStream input(text.data(), text.size());
    ErrorCollector errors(diags);
    FlowTokenSource lexer(text, &input);  // every character makes a token: no lexer errors
    antlr4::CommonTokenStream tokens(&lexer);
    tokens.fill();
    int depth = 0, unary_run = 0;
    std::vector<Loc> open_strings;
    std::vector<bool> braces;  // per open `{` or `${`: whether it is an interpolation
    int interpolations = 0;
    antlr4::Token* last = nullptr;  // the last token that is not a comment
    for (antlr4::Token* t : tokens.getTokens()) {
      size_t type = t->getType();
      if (type == FlowLexer::LINE_COMMENT) {
        if (interpolations > 0) {
          diags->Error(LocOf(t), "`//` starts a comment, which cannot stand inside `${...}` "
                                 "(floored division is `math.div(a, b)`)");
          return program;
        }
        if (CommentHidesCode(last, t)) {
          diags->Error(LocOf(t), "`//` starts a comment to the end of the line, which hides the code after its `;` "
                                 "(Flow has no `//` operator: floored division is `math.div(a, b)`); "
                                 "end the statement before the comment, or put the comment on a line of its own");
          return program;
        }
        continue;
      }
      last = t;
      if (type == FlowLexer::INTERP_START || type == FlowLexer::LBRACE) {
        braces.push_back(type == FlowLexer::INTERP_START);
        interpolations += braces.back();
      } else if (type == FlowLexer::RBRACE && !braces.empty()) {
        interpolations -= braces.back();
        braces.pop_back();
      }
      if (type == FlowLexer::DQUOTE) open_strings.push_back(LocOf(t));
      if ((type == FlowLexer::STR_END || type == FlowLexer::STR_NEWLINE) && !open_strings.empty()) {
        if (type == FlowLexer::STR_NEWLINE) errors.StringStartsAt(t->getTokenIndex(), open_strings.back());
        open_strings.pop_back();
      }
      if (type == FlowLexer::LPAREN || type == FlowLexer::LBRACK || type == FlowLexer::LBRACE ||
          type == FlowLexer::INTERP_START || type == FlowLexer::DQUOTE) {
        ++depth;
      } else if (type == FlowLexer::RPAREN || type == FlowLexer::RBRACK || type == FlowLexer::RBRACE ||
                 type == FlowLexer::STR_END) {
        --depth;
      }
      if (type == FlowLexer::UNTERMINATED_COMMENT) {
        diags->Error(LocOf(t), "unterminated comment: `/*` without a closing `*/`");
        return program;
      }
      unary_run = (type == FlowLexer::MINUS || type == FlowLexer::BANG || type == FlowLexer::AWAIT) ? unary_run + 1 : 0;
      if (depth > kMaxNesting || unary_run > kMaxNesting) {
        diags->Error(LocOf(t), fmt::format("nesting deeper than {} levels", kMaxNesting));
        return program;
      }
    }
    StackGuardedParser parser(&tokens);
    Flow::ProgramContext* tree = nullptr;
    try {
      tree = ParseTwoStage(&parser, &tokens, &errors);
    } catch (const ParserTooDeep&) {
      diags->Error(LocOf(parser.getCurrentToken()), "expression nesting too deep; split it into smaller expressions with `let`");
      return program;
    }
    if (diags->HasErrors()) return program;
    AstBuilder builder(diags);
    builder.BuildBlockInto(tree->stmt(), &program.body);
  } catch (const std::exception& e) {
    diags->Error({1, 1}, fmt::format("cannot parse: {}", e.what()));
  }
  return program;
}

std::vector<std::string> Keywords() {
  std::vector<std::string> words;
  antlr4::ANTLRInputStream nothing("");
  FlowLexer lexer(&nothing);
  const antlr4::dfa::Vocabulary& vocabulary = lexer.getVocabulary();
  for (size_t t = 1; t <= vocabulary.getMaxTokenType(); ++t) {
    std::string literal = vocabulary.getLiteralName(t);  // 'let', or "" for IDENT and the like
    if (literal.size() > 2 && std::isalpha(static_cast<unsigned char>(literal[1])))
      words.push_back(literal.substr(1, literal.size() - 2));
  }
  for (const char* word : {"import", "as", "test", "limit"}) words.push_back(word);  // read from IDENT by BuildStmt
  return words;
}

}  // namespace flow
