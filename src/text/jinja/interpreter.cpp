#include "text/jinja/interpreter.h"

#include "text/jinja/access.h"
#include "text/jinja/builtins.h"
#include "text/jinja/format.h"
#include "text/jinja/lexer.h"
#include "text/jinja/operators.h"

namespace onecard::text::jinja {

struct Interpreter::Scope {
  std::unordered_map<std::string, Value> vars;
  ScopePtr parent;
};

Interpreter::Interpreter(const std::string& source) : src_(source), globals_(make_globals()) {
  // namespace() lives here rather than with the other globals so that namespaces can be tracked.
  globals_.object_data().set(
      "namespace", Value::function("namespace", [this](CallArgs& args) -> Result<Value> {
        Value ns = Value::object();
        ns.object_data().is_namespace = true;
        if (args.positional.size() > 1) return Error("namespace() takes at most one positional argument");
        if (!args.positional.empty()) {
          const Value& init = args.positional[0];
          if (!init.is_object()) return make_error("namespace(): cannot initialise from {}", type_name(init));
          ns.object_data().items = init.object_data().items;
        }
        for (const auto& [k, v] : args.named) ns.object_data().set(k, v);
        namespaces_.push_back(ns);
        return ns;
      }));
}

Interpreter::~Interpreter() {
  for (Value& ns : namespaces_) ns.object_data().items.clear();
}

Result<std::string> Interpreter::render(const Body& body, const Value& context) {
  if (!context.is_object()) return Error("the template context must be a dict");
  root_ = std::make_shared<Scope>();
  for (const auto& [k, v] : context.object_data().items) root_->vars[k] = v;
  std::string out;
  auto r = exec_body(body, root_, out);
  for (Value& ns : namespaces_) ns.object_data().items.clear();
  namespaces_.clear();
  root_.reset();
  if (!r.ok()) return r.error();
  return out;
}

// Messages are located once, where the failing operation is; errors passing outward keep that location.
Error Interpreter::locate(const Error& e, size_t offset) const {
  const std::string& m = e.message();
  if (m.starts_with("line ") && m.find(", column ") != std::string::npos) return e;
  return make_error("{}: {}", describe_location(src_, offset), m);
}

Status Interpreter::enter(size_t offset) {
  if (++depth_ > kMaxEvalDepth) {
    return locate(make_error("the template nests or recurses deeper than {} levels", kMaxEvalDepth), offset);
  }
  return {};
}

Value Interpreter::lookup(const std::string& name, const Scope& scope) const {
  for (const Scope* s = &scope; s != nullptr; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  if (const Value* g = globals_.object_data().find(name)) return *g;
  return Value::undefined(fmt::format("'{}' is undefined", name));
}

Result<Interpreter::Flow> Interpreter::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const StmtPtr& s : body) {
    ONECARD_ASSIGN_OR_RETURN(Flow f, exec(*s, scope, out));
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Result<Interpreter::Flow> Interpreter::exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
  ONECARD_TRY(enter(s.offset));
  struct Leave {
    int& d;
    ~Leave() { --d; }
  } leave{depth_};
  switch (s.kind) {
    case StmtKind::kText:
      out += s.text;
      return Flow::kNormal;
    case StmtKind::kOutput: {
      ONECARD_ASSIGN_OR_RETURN(Value v, eval(*s.expr, scope));
      auto text = to_str(v);
      if (!text.ok()) return locate(text.error(), s.expr->offset);
      out += *text;
      return Flow::kNormal;
    }
    case StmtKind::kIf:
      for (const auto& [cond, body] : s.branches) {
        ONECARD_ASSIGN_OR_RETURN(Value c, eval(*cond, scope));
        if (truthy(c)) return exec_body(body, scope, out);
      }
      return exec_body(s.else_body, scope, out);
    case StmtKind::kFor:
      return exec_for(s, scope, out);
    case StmtKind::kSet: {
      ONECARD_ASSIGN_OR_RETURN(Value v, eval(*s.expr, scope));
      ONECARD_TRY(exec_set(s, scope, v));
      return Flow::kNormal;
    }
    case StmtKind::kSetBlock: {
      std::string captured;
      ONECARD_TRY(exec_body(s.body, scope, captured));
      ONECARD_TRY(exec_set(s, scope, Value(std::move(captured))));
      return Flow::kNormal;
    }
    case StmtKind::kMacro: {
      const Stmt* macro = &s;
      std::weak_ptr<Scope> defined_in = scope;
      scope->vars[s.text] = Value::function(
          s.text, [this, macro, defined_in](CallArgs& args) { return call_macro(*macro, defined_in, args); });
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      std::string captured;
      ONECARD_TRY(exec_body(s.body, scope, captured));
      const Value input(std::move(captured));
      ONECARD_ASSIGN_OR_RETURN(Value v, eval_filter(*s.expr, scope, &input));
      auto text = to_str(v);
      if (!text.ok()) return locate(text.error(), s.offset);
      out += *text;
      return Flow::kNormal;
    }
    case StmtKind::kScope:
      return exec_body(s.body, scope, out);
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
  }
  return Flow::kNormal;
}

Status Interpreter::bind_targets(const std::vector<std::string>& names, const Value& v, Scope& scope) {
  if (names.size() == 1) {
    scope.vars[names[0]] = v;
    return {};
  }
  auto items = iterate(v);
  if (!items.ok()) return make_error("cannot unpack non-iterable {} object", type_name(v));
  if (items->size() != names.size()) {
    return make_error("{} values to unpack (expected {}, got {})",
                      items->size() > names.size() ? "too many" : "not enough", names.size(), items->size());
  }
  for (size_t i = 0; i < names.size(); ++i) scope.vars[names[i]] = (*items)[i];
  return {};
}

Status Interpreter::exec_set(const Stmt& s, const ScopePtr& scope, const Value& v) {
  if (s.attr.empty()) {
    auto r = bind_targets(s.names, v, *scope);
    if (!r.ok()) return locate(r.error(), s.offset);
    return {};
  }
  Value target = lookup(s.names[0], *scope);
  if (!target.is_object() || !target.object_data().is_namespace) {
    return locate(
        make_error("cannot assign attribute '{}' on '{}', which is not a namespace()", s.attr, s.names[0]),
        s.offset);
  }
  target.object_data().set(s.attr, v);
  return {};
}

Result<Interpreter::Flow> Interpreter::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
  ONECARD_ASSIGN_OR_RETURN(Value seq, eval(*s.expr, scope));
  auto all = iterate(seq);
  if (!all.ok()) return locate(all.error(), s.expr->offset);
  std::vector<Value> items;
  if (s.cond) {
    // The loop filter sees the loop variables but not `loop`.
    for (const Value& item : *all) {
      auto probe = std::make_shared<Scope>();
      probe->parent = scope;
      auto b = bind_targets(s.names, item, *probe);
      if (!b.ok()) return locate(b.error(), s.offset);
      ONECARD_ASSIGN_OR_RETURN(Value keep, eval(*s.cond, probe));
      if (truthy(keep)) items.push_back(item);
    }
  } else {
    items = std::move(*all);
  }
  if (items.empty()) {
    auto inner = std::make_shared<Scope>();
    inner->parent = scope;
    ONECARD_TRY(exec_body(s.else_body, inner, out));
    return Flow::kNormal;
  }
  const auto n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    auto inner = std::make_shared<Scope>();
    inner->parent = scope;
    auto b = bind_targets(s.names, items[static_cast<size_t>(i)], *inner);
    if (!b.ok()) return locate(b.error(), s.offset);
    Value loop = Value::object();
    ObjectData& l = loop.object_data();
    l.is_namespace = true;  // attribute access reads its fields; it has no dict methods
    l.items = {{"index", Value(i + 1)},
               {"index0", Value(i)},
               {"revindex", Value(n - i)},
               {"revindex0", Value(n - i - 1)},
               {"first", Value(i == 0)},
               {"last", Value(i == n - 1)},
               {"length", Value(n)},
               {"depth", Value(1)},
               {"depth0", Value(0)},
               {"previtem",
                i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item")},
               {"nextitem",
                i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item")}};
    l.items.emplace_back("cycle", Value::function("cycle", [i](CallArgs& args) -> Result<Value> {
                           if (args.positional.empty()) return Error("no items for cycling given");
                           return args.positional[static_cast<size_t>(i) % args.positional.size()];
                         }));
    inner->vars["loop"] = loop;
    ONECARD_ASSIGN_OR_RETURN(Flow f, exec_body(s.body, inner, out));
    if (f == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

Result<Value> Interpreter::call_macro(const Stmt& m, const std::weak_ptr<Scope>& defined_in, CallArgs& args) {
  ONECARD_TRY(enter(m.offset));
  struct Leave {
    int& d;
    ~Leave() { --d; }
  } leave{depth_};
  auto scope = std::make_shared<Scope>();
  // A macro that outlived its defining loop iteration still sees the template's top level.
  scope->parent = defined_in.lock();
  if (!scope->parent) scope->parent = root_;
  const size_t n_params = m.params.size();
  if (args.positional.size() > n_params && !m.uses_varargs) {
    return make_error("macro '{}' takes not more than {} argument(s)", m.text, n_params);
  }
  std::vector<bool> given(n_params, false);
  for (size_t i = 0; i < args.positional.size() && i < n_params; ++i) {
    scope->vars[m.params[i].name] = args.positional[i];
    given[i] = true;
  }
  Value kwargs = Value::object();
  for (const auto& [k, v] : args.named) {
    size_t i = 0;
    while (i < n_params && m.params[i].name != k) ++i;
    if (i == n_params) {
      if (!m.uses_kwargs) return make_error("macro '{}' takes no keyword argument '{}'", m.text, k);
      kwargs.object_data().set(k, v);
      continue;
    }
    if (given[i]) return make_error("macro '{}' got multiple values for argument '{}'", m.text, k);
    scope->vars[k] = v;
    given[i] = true;
  }
  for (size_t i = 0; i < n_params; ++i) {
    if (given[i]) continue;
    if (m.params[i].default_value) {
      ONECARD_ASSIGN_OR_RETURN(Value d, eval(*m.params[i].default_value, scope));
      scope->vars[m.params[i].name] = d;
    } else {
      scope->vars[m.params[i].name] =
          Value::undefined(fmt::format("parameter '{}' was not provided", m.params[i].name));
    }
  }
  std::vector<Value> extra;
  for (size_t i = n_params; i < args.positional.size(); ++i) extra.push_back(args.positional[i]);
  scope->vars["varargs"] = Value::array(std::move(extra), true);
  scope->vars["kwargs"] = kwargs;
  std::string out;
  ONECARD_TRY(exec_body(m.body, scope, out));
  return Value(std::move(out));
}

Result<Value> Interpreter::eval(const Expr& e, const ScopePtr& scope) {
  ONECARD_TRY(enter(e.offset));
  auto r = eval_inner(e, scope);
  --depth_;
  if (!r.ok()) return locate(r.error(), e.offset);
  return r;
}

Result<CallArgs> Interpreter::eval_args(const Expr& e, const ScopePtr& scope) {
  CallArgs args;
  for (const ExprPtr& a : e.args) {
    ONECARD_ASSIGN_OR_RETURN(Value v, eval(*a, scope));
    args.positional.push_back(std::move(v));
  }
  for (const auto& [k, a] : e.named) {
    ONECARD_ASSIGN_OR_RETURN(Value v, eval(*a, scope));
    args.named.emplace_back(k, std::move(v));
  }
  return args;
}

Result<Value> Interpreter::eval_filter(const Expr& e, const ScopePtr& scope, const Value* block_input) {
  if (e.unknown) return make_error("unknown filter '{}'", e.name);
  Value input;
  if (e.target) {
    if (e.target->kind == ExprKind::kFilter && block_input != nullptr) {
      ONECARD_ASSIGN_OR_RETURN(input, eval_filter(*e.target, scope, block_input));
    } else {
      ONECARD_ASSIGN_OR_RETURN(input, eval(*e.target, scope));
    }
  } else if (block_input != nullptr) {
    input = *block_input;
  }
  ONECARD_ASSIGN_OR_RETURN(CallArgs args, eval_args(e, scope));
  auto r = apply_filter(e.name, input, args);
  if (!r.ok()) return locate(r.error(), e.offset);
  return r;
}

Result<Value> Interpreter::eval_inner(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.value;
    case ExprKind::kName:
      return lookup(e.name, *scope);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      for (const ExprPtr& a : e.args) {
        ONECARD_ASSIGN_OR_RETURN(Value v, eval(*a, scope));
        items.push_back(std::move(v));
      }
      return Value::array(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      Value d = Value::object();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        ONECARD_ASSIGN_OR_RETURN(Value k, eval(*e.args[i], scope));
        if (!k.is_string()) return make_error("dict keys must be strings here, not {}", type_name(k));
        ONECARD_ASSIGN_OR_RETURN(Value v, eval(*e.args[i + 1], scope));
        d.object_data().set(k.as_string(), std::move(v));
      }
      return d;
    }
    case ExprKind::kAttr: {
      ONECARD_ASSIGN_OR_RETURN(Value t, eval(*e.target, scope));
      return get_attr(t, e.name);
    }
    case ExprKind::kItem: {
      ONECARD_ASSIGN_OR_RETURN(Value t, eval(*e.target, scope));
      ONECARD_ASSIGN_OR_RETURN(Value k, eval(*e.args[0], scope));
      return get_item(t, k);
    }
    case ExprKind::kSlice: {
      ONECARD_ASSIGN_OR_RETURN(Value t, eval(*e.target, scope));
      Value parts[3];
      for (int i = 0; i < 3; ++i) {
        if (e.args[static_cast<size_t>(i)]) {
          ONECARD_ASSIGN_OR_RETURN(parts[i], eval(*e.args[static_cast<size_t>(i)], scope));
        }
      }
      return get_slice(t, parts[0], parts[1], parts[2]);
    }
    case ExprKind::kCall: {
      ONECARD_ASSIGN_OR_RETURN(Value callee, eval(*e.target, scope));
      if (callee.is_undefined()) return undefined_error(callee);
      if (!callee.is_function()) return make_error("'{}' object is not callable", type_name(callee));
      ONECARD_ASSIGN_OR_RETURN(CallArgs args, eval_args(e, scope));
      return callee.function_data().call(args);
    }
    case ExprKind::kFilter:
      return eval_filter(e, scope, nullptr);
    case ExprKind::kTest: {
      if (e.unknown) return make_error("unknown test '{}'", e.name);
      ONECARD_ASSIGN_OR_RETURN(Value subject, eval(*e.target, scope));
      ONECARD_ASSIGN_OR_RETURN(CallArgs args, eval_args(e, scope));
      ONECARD_ASSIGN_OR_RETURN(bool r, apply_test(e.name, subject, args));
      return Value(r != e.negated);
    }
    case ExprKind::kUnary: {
      ONECARD_ASSIGN_OR_RETURN(Value v, eval(*e.args[0], scope));
      if (e.name == "not") return Value(!truthy(v));
      if (e.name == "-") return unary_minus(v);
      if (v.is_undefined()) return undefined_error(v);
      if (!v.is_number()) return make_error("bad operand type for unary +: '{}'", type_name(v));
      return v.is_bool() ? Value(v.as_int()) : v;
    }
    case ExprKind::kBinary: {
      ONECARD_ASSIGN_OR_RETURN(Value a, eval(*e.args[0], scope));
      // and / or return an operand, as in Python.
      if (e.name == "and") return truthy(a) ? eval(*e.args[1], scope) : Result<Value>(a);
      if (e.name == "or") return truthy(a) ? Result<Value>(a) : eval(*e.args[1], scope);
      ONECARD_ASSIGN_OR_RETURN(Value b, eval(*e.args[1], scope));
      return binary_op(e.name, a, b);
    }
    case ExprKind::kCompare: {
      ONECARD_ASSIGN_OR_RETURN(Value left, eval(*e.args[0], scope));
      for (size_t i = 0; i < e.ops.size(); ++i) {
        ONECARD_ASSIGN_OR_RETURN(Value right, eval(*e.args[i + 1], scope));
        ONECARD_ASSIGN_OR_RETURN(bool ok, compare(e.ops[i], left, right));
        if (!ok) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::kCond: {
      ONECARD_ASSIGN_OR_RETURN(Value c, eval(*e.args[1], scope));
      if (truthy(c)) return eval(*e.args[0], scope);
      if (e.args[2]) return eval(*e.args[2], scope);
      return Value::undefined("the conditional expression has no else branch");
    }
  }
  return Error("unknown expression");
}

}  // namespace onecard::text::jinja
