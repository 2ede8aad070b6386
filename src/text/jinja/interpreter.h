// Renders a parsed template against a context, with Jinja2's scoping: `set` inside a for loop stays in
// that iteration, `if` opens no scope, macros see the scope they were defined in. Runtime errors carry the
// line and column of the expression that failed; evaluation depth is bounded so that deep macro recursion
// fails cleanly instead of overflowing the stack.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "text/jinja/ast.h"
#include "text/jinja/value.h"

namespace onecard::text::jinja {

// Nested expression evaluations, statements and macro calls together.
inline constexpr int kMaxEvalDepth = 400;

class Interpreter {
 public:
  // `source` is the normalized template text that `body` was parsed from, for error locations.
  explicit Interpreter(const std::string& source);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // `context` must be a dict; its keys become the template's top-level variables.
  Result<std::string> render(const Body& body, const Value& context);

 private:
  struct Scope;
  using ScopePtr = std::shared_ptr<Scope>;
  enum class Flow { kNormal, kBreak, kContinue };

  Result<Flow> exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  Result<Flow> exec(const Stmt& s, const ScopePtr& scope, std::string& out);
  Result<Flow> exec_for(const Stmt& s, const ScopePtr& scope, std::string& out);
  Status exec_set(const Stmt& s, const ScopePtr& scope, const Value& v);
  Result<Value> call_macro(const Stmt& macro, const std::weak_ptr<Scope>& defined_in, CallArgs& args);

  Result<Value> eval(const Expr& e, const ScopePtr& scope);
  Result<Value> eval_inner(const Expr& e, const ScopePtr& scope);
  Result<Value> eval_filter(const Expr& e, const ScopePtr& scope, const Value* block_input);
  Result<CallArgs> eval_args(const Expr& e, const ScopePtr& scope);
  Value lookup(const std::string& name, const Scope& scope) const;
  Status bind_targets(const std::vector<std::string>& names, const Value& v, Scope& scope);

  Error locate(const Error& e, size_t offset) const;
  Status enter(size_t offset);

  const std::string& src_;
  Value globals_;
  ScopePtr root_;
  int depth_ = 0;
  // Namespaces made while rendering; emptied afterwards, since one may hold itself.
  std::vector<Value> namespaces_;
};

}  // namespace onecard::text::jinja
