// The abstract syntax tree of a Flow program. Built by parse.cc from the ANTLR tree; the
// code generator reads it. One node type for expressions and one for statements, each with
// a kind and the fields that kind uses, keeps the tree small to build and to walk.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace flow::ast {

struct Loc {
  uint32_t line = 0;
  uint32_t col = 0;  // 1-based
};

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;

struct Block {
  Loc loc;
  Loc end;  // its closing `}` (for editors: what a name declared in it is seen from)
  std::vector<StmtPtr> stmts;
};

struct FnDef {
  std::string name;  // "" for an anonymous function
  Loc loc;
  std::vector<std::string> params;
  std::vector<Loc> param_locs;
  Block body;
  // The body of a `spawn` block or a `parallel for`: it returns its block's value (the
  // last expression statement's, else null), as a step's block does.
  bool returns_block_value = false;
};

// One named option of `retry (...)`, `breaker NAME (...)`, `limit NAME (...)` or `parallel (...)`.
struct Option {
  std::string name;
  Loc loc;
  ExprPtr value;
};

enum class ExprKind {
  kInt, kFloat, kString, kBool, kNull, kName,
  kInterpolation,  // parts: string pieces and expressions, in order
  kList,           // items
  kMap,            // keys + items
  kFunction,       // fn
  kField,          // object . text
  kIndex,          // object [ items[0] ]
  kCall,           // object ( items )
  kMethod,         // object . text ( items )
  kUnary,          // text is the operator; object is the operand
  kBinary,         // text is the operator; object, items[0]
  kAnd, kOr,       // object, items[0]
  kCoalesce,       // object ?? items[0]
  kStep,           // object = key, once, block
  kRetry,          // object = attempts (or null when options are given), options, block
  kTimeout,        // object = duration, block
  kBreaker,        // object = name, options, block
  kLimit,          // object = name (a string), options, block
  kSpawn,          // fn: the block as a function of no parameters
  kAwait,          // object: a task or a list of tasks
  kParallel,       // fn(index, item): the body; object = the list; options
};

struct Expr {
  ExprKind kind;
  Loc loc;
  int64_t int_value = 0;
  double float_value = 0;
  bool bool_value = false;  // kBool; `once` of kStep
  std::string text;         // string value, name, field/method name or operator
  ExprPtr object;
  std::vector<ExprPtr> items;
  std::vector<std::string> keys;
  std::shared_ptr<FnDef> fn;
  std::unique_ptr<Block> block;
  std::vector<Option> options;
};

enum class StmtKind {
  kLet,       // name = expr
  kFnDecl,    // fn
  kIf,        // branches (the `if`, then each `else if`, in order), else_body (may be null)
  kWhile,     // expr, body
  kFor,       // name (, name2) in expr, body
  kBreak, kContinue,
  kReturn,    // expr (may be null)
  kThrow,     // expr
  kTry,       // body, name (the catch variable) and else_body (the catch block), finally_body;
              // else_body or finally_body may be null, not both
  kBlock,     // body
  kAssign,    // target = expr, or target op= expr (assign_op)
  kExpr,      // expr
  kImport,    // import expr (the path, a plain string) as name
  kTest,      // test "name" { body }: name, and fn (the block as a function of no parameters)
};

// One `if` or `else if` of an if statement: its condition and its block.
struct IfBranch {
  ExprPtr cond;
  std::unique_ptr<Block> body;
};

struct Stmt {
  StmtKind kind;
  Loc loc;
  std::string name;
  std::string name2;
  Loc name_loc;
  Loc name2_loc;  // kFor: the second variable's
  ExprPtr expr;
  ExprPtr target;
  std::string assign_op;  // kAssign: "" for `=`, else the operator of `+=`, `-=`, `*=` or `/=`
  std::shared_ptr<FnDef> fn;
  std::unique_ptr<Block> body;
  std::unique_ptr<Block> else_body;
  std::unique_ptr<Block> finally_body;  // kTry
  std::vector<IfBranch> branches;
};

struct Program {
  std::string file;
  Block body;
};

}  // namespace flow::ast
