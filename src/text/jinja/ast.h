// The parsed template: expressions and statements, each remembering its source offset so that runtime
// errors can name the line and column.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/value.h"

namespace onecard::text::jinja {

enum class ExprKind {
  kLiteral,  // value
  kName,     // name
  kList,     // args: items
  kTuple,    // args: items
  kDict,     // args: key0, value0, key1, value1, ...
  kAttr,     // target.name
  kItem,     // target[args[0]]
  kSlice,    // target[args[0]:args[1]:args[2]], absent parts null
  kCall,     // target(args..., named...)
  kFilter,   // target | name(args..., named...); target null inside {% filter %}
  kTest,     // target is [not] name(args...)
  kUnary,    // op args[0]: "-", "+", "not"
  kBinary,   // args[0] op args[1]: arithmetic, "~", "and", "or"
  kCompare,  // args[0] ops[0] args[1] ops[1] args[2] ...: ==, !=, <, <=, >, >=, in, not in
  kCond,     // args[0] if args[1] else args[2] (else may be null)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  size_t offset = 0;
  Value value;
  std::string name;  // name, attribute, filter or test name, operator
  ExprPtr target;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> named;
  std::vector<std::string> ops;  // kCompare
  bool negated = false;          // `is not`
  // A filter or test the parser did not know but, as Jinja2 does inside `if`, left to fail if reached.
  bool unknown = false;
};

enum class StmtKind {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches (condition, body) ..., else_body
  kFor,          // for names in expr [if cond]: body, else_body
  kSet,          // set names = expr, or set names[0].attr = expr
  kSetBlock,     // set names[0] %}body{% endset
  kMacro,        // macro text(params): body
  kFilterBlock,  // filter expr (a kFilter chain on a null target): body
  kScope,        // a body rendered as is ({% generation %} of Hugging Face's environment)
  kBreak,
  kContinue,
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null: required (Undefined when not passed, as Jinja2)
};

struct Stmt {
  StmtKind kind;
  size_t offset = 0;
  std::string text;  // kText text, kMacro name
  ExprPtr expr;
  ExprPtr cond;  // kFor filter
  std::vector<std::string> names;
  std::string attr;  // kSet on a namespace attribute
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<MacroParam> params;
  bool uses_varargs = false;  // kMacro: its body reads `varargs` / `kwargs`
  bool uses_kwargs = false;
};

}  // namespace onecard::text::jinja
