#include "text/jinja/parser.h"

#include <charconv>
#include <cstdlib>
#include <initializer_list>
#include <string_view>

#include "text/jinja/builtins.h"

namespace onecard::text::jinja {
namespace {

// Tags Jinja2 has but this engine does not render; naming them gives a clearer error than "unknown tag".
constexpr std::string_view kUnsupportedTags[] = {"call", "include",    "import", "from",  "extends",  "block",
                                                 "with", "autoescape", "do",     "trans", "pluralize"};

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& source) : toks_(tokens), src_(source) {}

  Result<Body> run() {
    Body body;
    std::string end_tag;
    ONECARD_TRY(parse_body(body, {}, end_tag, "", 0));
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(std::string_view op) const { return cur().type == TokenType::kOperator && cur().text == op; }
  bool is_name(std::string_view name) const { return cur().type == TokenType::kName && cur().text == name; }

  Error error_at(size_t offset, const std::string& what) const {
    return make_error("{}: {}", describe_location(src_, offset), what);
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::kText:
        return "template text";
      case TokenType::kVarBegin:
        return "'{{'";
      case TokenType::kVarEnd:
        return "'}}'";
      case TokenType::kBlockBegin:
        return "'{%'";
      case TokenType::kBlockEnd:
        return "'%}'";
      case TokenType::kString:
        return "a string";
      case TokenType::kInt:
      case TokenType::kFloat:
        return "number " + t.text;
      case TokenType::kEnd:
        return "the end of the template";
      default:
        return "'" + t.text + "'";
    }
  }

  Error unexpected(const std::string& expected) const {
    return error_at(cur().offset, "expected " + expected + ", found " + describe(cur()));
  }

  Status expect_op(std::string_view op) {
    if (!is_op(op)) return unexpected("'" + std::string(op) + "'");
    advance();
    return {};
  }

  Status expect_block_end(std::string_view tag) {
    if (cur().type != TokenType::kBlockEnd) return unexpected("'%}' to end '{% " + std::string(tag) + " %}'");
    advance();
    return {};
  }

  Result<std::string> expect_name(const std::string& what) {
    if (cur().type != TokenType::kName) return unexpected(what);
    std::string n = cur().text;
    advance();
    return n;
  }

  Status enter(size_t offset) {
    if (++depth_ > kMaxParseDepth)
      return error_at(offset, fmt::format("nesting deeper than {} levels", kMaxParseDepth));
    return {};
  }

  ExprPtr make(ExprKind kind, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->offset = offset;
    return e;
  }

  // ---- statements ----

  // Parses statements until `{% <one of ends> ...`, leaving the position on that tag name. At the top
  // level (no ends) it stops at the end of the template; inside a block the end of the template is an
  // unclosed-block error naming the block and where it opened.
  Status parse_body(Body& body, std::initializer_list<std::string_view> ends, std::string& found,
                    std::string_view opener, size_t opener_offset) {
    ONECARD_TRY(enter(opener_offset));
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::kEnd) {
        if (ends.size() == 0) break;
        return error_at(opener_offset,
                        fmt::format("unclosed '{{% {} %}}' block: the template ends before its "
                                    "'{{% end{} %}}'",
                                    opener, opener));
      }
      if (t.type == TokenType::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->offset = t.offset;
        s->text = t.text;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == TokenType::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->offset = t.offset;
        advance();
        ONECARD_ASSIGN_OR_RETURN(s->expr, parse_tuple(true));
        if (cur().type != TokenType::kVarEnd) return unexpected("'}}'");
        advance();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::kBlockBegin) {
        const Token& tag = peek();
        if (tag.type != TokenType::kName) {
          advance();
          return unexpected("a tag name after '{%'");
        }
        for (std::string_view e : ends) {
          if (tag.text == e) {
            advance();
            found = tag.text;
            --depth_;
            return {};
          }
        }
        advance();
        ONECARD_ASSIGN_OR_RETURN(StmtPtr s, parse_statement(t.offset));
        body.push_back(std::move(s));
      } else {
        return unexpected("template text or a tag");
      }
    }
    --depth_;
    return {};
  }

  Result<StmtPtr> parse_statement(size_t offset) {
    const std::string tag = cur().text;
    const size_t tag_offset = cur().offset;
    advance();
    if (tag == "if") return parse_if(offset);
    if (tag == "for") return parse_for(offset);
    if (tag == "set") return parse_set(offset);
    if (tag == "macro") return parse_macro(offset);
    if (tag == "filter") return parse_filter_block(offset);
    if (tag == "generation") return parse_scope(offset, tag);
    if (tag == "raw") return error_at(tag_offset, "malformed '{% raw %}' tag");
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) return error_at(tag_offset, fmt::format("'{{% {} %}}' outside a for loop", tag));
      auto s = std::make_unique<Stmt>();
      s->kind = tag == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      s->offset = offset;
      ONECARD_TRY(expect_block_end(tag));
      return s;
    }
    for (std::string_view u : kUnsupportedTags) {
      if (tag == u) return error_at(tag_offset, fmt::format("unsupported construct '{{% {} %}}'", tag));
    }
    if (tag.starts_with("end") || tag == "elif" || tag == "else") {
      return error_at(tag_offset,
                      fmt::format("unexpected '{{% {} %}}' with no open block it could close", tag));
    }
    return error_at(tag_offset, fmt::format("unknown tag '{}'", tag));
  }

  Result<StmtPtr> parse_if(size_t offset) {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kIf;
    s->offset = offset;
    // As Jinja2 does, a filter or test unknown at parse time is only an error inside `if` if it runs.
    ++soft_;
    std::string branch_tag = "if";
    while (true) {
      ONECARD_ASSIGN_OR_RETURN(ExprPtr cond, parse_tuple(false));
      ONECARD_TRY(expect_block_end(branch_tag));
      Body body;
      std::string found;
      ONECARD_TRY(parse_body(body, {"elif", "else", "endif"}, found, "if", offset));
      s->branches.emplace_back(std::move(cond), std::move(body));
      advance();
      if (found == "elif") {
        branch_tag = "elif";
        continue;
      }
      if (found == "else") {
        ONECARD_TRY(expect_block_end("else"));
        ONECARD_TRY(parse_body(s->else_body, {"endif"}, found, "if", offset));
        advance();
      }
      ONECARD_TRY(expect_block_end("endif"));
      break;
    }
    --soft_;
    return s;
  }

  Result<std::vector<std::string>> parse_targets(std::string_view tag) {
    std::vector<std::string> names;
    const bool paren = is_op("(");
    if (paren) advance();
    while (true) {
      ONECARD_ASSIGN_OR_RETURN(std::string n,
                               expect_name(fmt::format("a variable name in '{{% {} %}}'", tag)));
      names.push_back(std::move(n));
      if (!is_op(",")) break;
      advance();
      if (cur().type != TokenType::kName) break;
    }
    if (paren) ONECARD_TRY(expect_op(")"));
    return names;
  }

  Result<StmtPtr> parse_for(size_t offset) {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kFor;
    s->offset = offset;
    ONECARD_ASSIGN_OR_RETURN(s->names, parse_targets("for"));
    if (!is_name("in")) return unexpected("'in' in '{% for %}'");
    advance();
    // A for body is a new frame in Jinja2: unknown filters there fail at parse time again.
    const int saved_soft = soft_;
    soft_ = 0;
    ONECARD_ASSIGN_OR_RETURN(s->expr, parse_tuple(false, false));
    if (is_name("if")) {
      advance();
      ONECARD_ASSIGN_OR_RETURN(s->cond, parse_expression(true));
    }
    if (is_name("recursive")) return error_at(cur().offset, "unsupported construct 'recursive' loop");
    ONECARD_TRY(expect_block_end("for"));
    std::string found;
    ++loop_depth_;
    ONECARD_TRY(parse_body(s->body, {"else", "endfor"}, found, "for", offset));
    --loop_depth_;
    advance();
    if (found == "else") {
      ONECARD_TRY(expect_block_end("else"));
      ONECARD_TRY(parse_body(s->else_body, {"endfor"}, found, "for", offset));
      advance();
    }
    ONECARD_TRY(expect_block_end("endfor"));
    soft_ = saved_soft;
    return s;
  }

  Result<StmtPtr> parse_set(size_t offset) {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kSet;
    s->offset = offset;
    if (cur().type == TokenType::kName && peek().type == TokenType::kOperator && peek().text == ".") {
      s->names.push_back(cur().text);
      advance();
      advance();
      ONECARD_ASSIGN_OR_RETURN(s->attr, expect_name("an attribute name in '{% set %}'"));
    } else {
      ONECARD_ASSIGN_OR_RETURN(s->names, parse_targets("set"));
    }
    if (is_op("=")) {
      advance();
      ONECARD_ASSIGN_OR_RETURN(s->expr, parse_tuple(true));
      ONECARD_TRY(expect_block_end("set"));
      return s;
    }
    if (!s->attr.empty() || s->names.size() != 1) return unexpected("'=' in '{% set %}'");
    s->kind = StmtKind::kSetBlock;
    ONECARD_TRY(expect_block_end("set"));
    std::string found;
    ONECARD_TRY(parse_body(s->body, {"endset"}, found, "set", offset));
    advance();
    ONECARD_TRY(expect_block_end("endset"));
    return s;
  }

  Result<StmtPtr> parse_macro(size_t offset) {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kMacro;
    s->offset = offset;
    ONECARD_ASSIGN_OR_RETURN(s->text, expect_name("a macro name"));
    ONECARD_TRY(expect_op("("));
    while (!is_op(")")) {
      MacroParam p;
      ONECARD_ASSIGN_OR_RETURN(p.name, expect_name("a parameter name"));
      if (is_op("=")) {
        advance();
        ONECARD_ASSIGN_OR_RETURN(p.default_value, parse_expression(true));
      }
      s->params.push_back(std::move(p));
      if (!is_op(",")) break;
      advance();
    }
    ONECARD_TRY(expect_op(")"));
    ONECARD_TRY(expect_block_end("macro"));
    const int saved_soft = soft_;
    const int saved_loops = loop_depth_;
    soft_ = 0;
    loop_depth_ = 0;
    macro_stack_.push_back(s.get());
    std::string found;
    ONECARD_TRY(parse_body(s->body, {"endmacro"}, found, "macro", offset));
    macro_stack_.pop_back();
    soft_ = saved_soft;
    loop_depth_ = saved_loops;
    advance();
    if (cur().type == TokenType::kName) advance();  // {% endmacro name %}
    ONECARD_TRY(expect_block_end("endmacro"));
    return s;
  }

  Result<StmtPtr> parse_filter_block(size_t offset) {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kFilterBlock;
    s->offset = offset;
    ExprPtr chain;
    do {
      if (chain) advance();  // the '|' between filters
      ONECARD_ASSIGN_OR_RETURN(chain, parse_filter(std::move(chain)));
    } while (is_op("|"));
    s->expr = std::move(chain);
    ONECARD_TRY(expect_block_end("filter"));
    std::string found;
    ONECARD_TRY(parse_body(s->body, {"endfilter"}, found, "filter", offset));
    advance();
    ONECARD_TRY(expect_block_end("endfilter"));
    return s;
  }

  Result<StmtPtr> parse_scope(size_t offset, const std::string& tag) {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kScope;
    s->offset = offset;
    ONECARD_TRY(expect_block_end(tag));
    std::string found;
    const std::string end = "end" + tag;
    ONECARD_TRY(parse_body(s->body, {std::string_view(end)}, found, tag, offset));
    advance();
    ONECARD_TRY(expect_block_end(end));
    return s;
  }

  // ---- expressions (Jinja2's precedence, loosest first) ----

  // `a, b` makes a tuple where Jinja2 allows one (output, set values, for iterables, if tests).
  Result<ExprPtr> parse_tuple(bool with_condexpr, bool allow_tuple = true) {
    const size_t offset = cur().offset;
    ONECARD_ASSIGN_OR_RETURN(ExprPtr first, parse_expression(with_condexpr));
    if (!allow_tuple || !is_op(",")) return first;
    auto t = make(ExprKind::kTuple, offset);
    t->args.push_back(std::move(first));
    while (is_op(",")) {
      advance();
      if (cur().type == TokenType::kVarEnd || cur().type == TokenType::kBlockEnd || is_op(")")) break;
      ONECARD_ASSIGN_OR_RETURN(ExprPtr e, parse_expression(with_condexpr));
      t->args.push_back(std::move(e));
    }
    return t;
  }

  Result<ExprPtr> parse_expression(bool with_condexpr) {
    ONECARD_TRY(enter(cur().offset));
    auto r = with_condexpr ? parse_condexpr() : parse_or();
    --depth_;
    return r;
  }

  Result<ExprPtr> parse_condexpr() {
    const size_t offset = cur().offset;
    ONECARD_ASSIGN_OR_RETURN(ExprPtr e, parse_or());
    while (is_name("if")) {
      advance();
      auto c = make(ExprKind::kCond, offset);
      ++soft_;
      ONECARD_ASSIGN_OR_RETURN(ExprPtr test, parse_or());
      ExprPtr otherwise;
      if (is_name("else")) {
        advance();
        ONECARD_ASSIGN_OR_RETURN(otherwise, parse_expression(true));
      }
      --soft_;
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(test));
      c->args.push_back(std::move(otherwise));
      e = std::move(c);
    }
    return e;
  }

  Result<ExprPtr> binary(std::string op, ExprPtr left, ExprPtr right, size_t offset) {
    auto b = make(ExprKind::kBinary, offset);
    b->name = std::move(op);
    b->args.push_back(std::move(left));
    b->args.push_back(std::move(right));
    return b;
  }

  Result<ExprPtr> parse_or() {
    const size_t offset = cur().offset;
    ONECARD_ASSIGN_OR_RETURN(ExprPtr left, parse_and());
    while (is_name("or")) {
      advance();
      ONECARD_ASSIGN_OR_RETURN(ExprPtr right, parse_and());
      ONECARD_ASSIGN_OR_RETURN(left, binary("or", std::move(left), std::move(right), offset));
    }
    return left;
  }

  Result<ExprPtr> parse_and() {
    const size_t offset = cur().offset;
    ONECARD_ASSIGN_OR_RETURN(ExprPtr left, parse_not());
    while (is_name("and")) {
      advance();
      ONECARD_ASSIGN_OR_RETURN(ExprPtr right, parse_not());
      ONECARD_ASSIGN_OR_RETURN(left, binary("and", std::move(left), std::move(right), offset));
    }
    return left;
  }

  Result<ExprPtr> parse_not() {
    if (!is_name("not")) return parse_compare();
    const size_t offset = cur().offset;
    advance();
    ONECARD_TRY(enter(offset));
    auto u = make(ExprKind::kUnary, offset);
    u->name = "not";
    ONECARD_ASSIGN_OR_RETURN(ExprPtr operand, parse_not());
    --depth_;
    u->args.push_back(std::move(operand));
    return ExprPtr(std::move(u));
  }

  Result<ExprPtr> parse_compare() {
    const size_t offset = cur().offset;
    ONECARD_ASSIGN_OR_RETURN(ExprPtr first, parse_math1());
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == TokenType::kOperator &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
           cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().type == TokenType::kName && peek().text == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(ExprKind::kCompare, offset);
        cmp->args.push_back(std::move(first));
      }
      ONECARD_ASSIGN_OR_RETURN(ExprPtr next, parse_math1());
      cmp->ops.push_back(std::move(op));
      cmp->args.push_back(std::move(next));
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  Result<ExprPtr> parse_math1() {
    const size_t offset = cur().offset;
    ONECARD_ASSIGN_OR_RETURN(ExprPtr left, parse_concat());
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      advance();
      ONECARD_ASSIGN_OR_RETURN(ExprPtr right, parse_concat());
      ONECARD_ASSIGN_OR_RETURN(left, binary(op, std::move(left), std::move(right), offset));
    }
    return left;
  }

  Result<ExprPtr> parse_concat() {
    const size_t offset = cur().offset;
    ONECARD_ASSIGN_OR_RETURN(ExprPtr left, parse_math2());
    while (is_op("~")) {
      advance();
      ONECARD_ASSIGN_OR_RETURN(ExprPtr right, parse_math2());
      ONECARD_ASSIGN_OR_RETURN(left, binary("~", std::move(left), std::move(right), offset));
    }
    return left;
  }

  Result<ExprPtr> parse_math2() {
    const size_t offset = cur().offset;
    ONECARD_ASSIGN_OR_RETURN(ExprPtr left, parse_pow());
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      advance();
      ONECARD_ASSIGN_OR_RETURN(ExprPtr right, parse_pow());
      ONECARD_ASSIGN_OR_RETURN(left, binary(op, std::move(left), std::move(right), offset));
    }
    return left;
  }

  Result<ExprPtr> parse_pow() {
    const size_t offset = cur().offset;
    ONECARD_ASSIGN_OR_RETURN(ExprPtr left, parse_unary(true));
    while (is_op("**")) {
      advance();
      ONECARD_ASSIGN_OR_RETURN(ExprPtr right, parse_unary(true));
      ONECARD_ASSIGN_OR_RETURN(left, binary("**", std::move(left), std::move(right), offset));
    }
    return left;
  }

  Result<ExprPtr> parse_unary(bool with_filter) {
    const size_t offset = cur().offset;
    ONECARD_TRY(enter(offset));
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      auto u = make(ExprKind::kUnary, offset);
      u->name = cur().text;
      advance();
      ONECARD_ASSIGN_OR_RETURN(ExprPtr operand, parse_unary(false));
      u->args.push_back(std::move(operand));
      node = std::move(u);
    } else {
      ONECARD_ASSIGN_OR_RETURN(node, parse_primary());
    }
    ONECARD_ASSIGN_OR_RETURN(node, parse_postfix(std::move(node)));
    if (with_filter) {
      ONECARD_ASSIGN_OR_RETURN(node, parse_filter_expr(std::move(node)));
    }
    --depth_;
    return node;
  }

  Result<ExprPtr> parse_primary() {
    const Token& t = cur();
    const size_t offset = t.offset;
    switch (t.type) {
      case TokenType::kName: {
        auto e = make(ExprKind::kLiteral, offset);
        if (t.text == "true" || t.text == "True") {
          e->value = true;
        } else if (t.text == "false" || t.text == "False") {
          e->value = false;
        } else if (t.text == "none" || t.text == "None") {
          e->value = nullptr;
        } else {
          e->kind = ExprKind::kName;
          e->name = t.text;
          note_name(t.text);
        }
        advance();
        return e;
      }
      case TokenType::kString: {
        auto e = make(ExprKind::kLiteral, offset);
        std::string s;
        while (cur().type == TokenType::kString) {  // adjacent literals concatenate
          s += cur().text;
          advance();
        }
        e->value = std::move(s);
        return e;
      }
      case TokenType::kInt: {
        auto e = make(ExprKind::kLiteral, offset);
        int64_t v = 0;
        auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (r.ec != std::errc()) return error_at(offset, "integer literal out of range: " + t.text);
        e->value = v;
        advance();
        return e;
      }
      case TokenType::kFloat: {
        auto e = make(ExprKind::kLiteral, offset);
        e->value = std::strtod(t.text.c_str(), nullptr);
        advance();
        return e;
      }
      case TokenType::kOperator:
        if (t.text == "(") return parse_paren();
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        break;
      default:
        break;
    }
    return unexpected("an expression");
  }

  void note_name(const std::string& name) {
    if (macro_stack_.empty()) return;
    if (name == "varargs") macro_stack_.back()->uses_varargs = true;
    if (name == "kwargs") macro_stack_.back()->uses_kwargs = true;
  }

  Result<ExprPtr> parse_paren() {
    const size_t offset = cur().offset;
    advance();
    if (is_op(")")) {
      advance();
      return make(ExprKind::kTuple, offset);
    }
    ONECARD_ASSIGN_OR_RETURN(ExprPtr e, parse_expression(true));
    if (is_op(",")) {
      auto t = make(ExprKind::kTuple, offset);
      t->args.push_back(std::move(e));
      while (is_op(",")) {
        advance();
        if (is_op(")")) break;
        ONECARD_ASSIGN_OR_RETURN(ExprPtr item, parse_expression(true));
        t->args.push_back(std::move(item));
      }
      e = std::move(t);
    }
    ONECARD_TRY(expect_op(")"));
    return e;
  }

  Result<ExprPtr> parse_list() {
    auto l = make(ExprKind::kList, cur().offset);
    advance();
    while (!is_op("]")) {
      ONECARD_ASSIGN_OR_RETURN(ExprPtr item, parse_expression(true));
      l->args.push_back(std::move(item));
      if (!is_op(",")) break;
      advance();
    }
    ONECARD_TRY(expect_op("]"));
    return ExprPtr(std::move(l));
  }

  Result<ExprPtr> parse_dict() {
    auto d = make(ExprKind::kDict, cur().offset);
    advance();
    while (!is_op("}")) {
      ONECARD_ASSIGN_OR_RETURN(ExprPtr key, parse_expression(true));
      ONECARD_TRY(expect_op(":"));
      ONECARD_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
      d->args.push_back(std::move(key));
      d->args.push_back(std::move(value));
      if (!is_op(",")) break;
      advance();
    }
    ONECARD_TRY(expect_op("}"));
    return ExprPtr(std::move(d));
  }

  Result<ExprPtr> parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        const size_t offset = node->offset;  // runtime errors point at the start of the expression
        advance();
        if (cur().type == TokenType::kInt) {
          auto e = make(ExprKind::kItem, offset);
          auto idx = make(ExprKind::kLiteral, cur().offset);
          idx->value = static_cast<int64_t>(std::strtoll(cur().text.c_str(), nullptr, 10));
          advance();
          e->target = std::move(node);
          e->args.push_back(std::move(idx));
          node = std::move(e);
          continue;
        }
        auto e = make(ExprKind::kAttr, offset);
        ONECARD_ASSIGN_OR_RETURN(e->name, expect_name("an attribute name after '.'"));
        e->target = std::move(node);
        node = std::move(e);
      } else if (is_op("[")) {
        ONECARD_ASSIGN_OR_RETURN(node, parse_subscript(std::move(node)));
      } else if (is_op("(")) {
        ONECARD_ASSIGN_OR_RETURN(node, parse_call(std::move(node)));
      } else {
        return node;
      }
    }
  }

  Result<ExprPtr> parse_subscript(ExprPtr target) {
    const size_t offset = target->offset;
    advance();
    ExprPtr parts[3];
    int colons = 0;
    for (int i = 0; i < 3; ++i) {
      if (!is_op(":") && !is_op("]")) {
        ONECARD_ASSIGN_OR_RETURN(parts[i], parse_expression(true));
      }
      if (i < 2 && is_op(":")) {
        ++colons;
        advance();
      } else {
        break;
      }
    }
    ONECARD_TRY(expect_op("]"));
    if (colons == 0) {
      if (!parts[0]) return error_at(offset, "empty subscript '[]'");
      auto e = make(ExprKind::kItem, offset);
      e->target = std::move(target);
      e->args.push_back(std::move(parts[0]));
      return ExprPtr(std::move(e));
    }
    auto e = make(ExprKind::kSlice, offset);
    e->target = std::move(target);
    for (auto& p : parts) e->args.push_back(std::move(p));
    return ExprPtr(std::move(e));
  }

  // Arguments of a call, filter or test: positional first, then name=value.
  Status parse_args(Expr& e) {
    ONECARD_TRY(expect_op("("));
    while (!is_op(")")) {
      if (is_op("*") || is_op("**"))
        return error_at(cur().offset, "unsupported construct '*args' / '**kwargs' in a call");
      if (cur().type == TokenType::kName && peek().type == TokenType::kOperator && peek().text == "=") {
        std::string key = cur().text;
        advance();
        advance();
        ONECARD_ASSIGN_OR_RETURN(ExprPtr v, parse_expression(true));
        e.named.emplace_back(std::move(key), std::move(v));
      } else {
        if (!e.named.empty()) return error_at(cur().offset, "positional argument after a keyword argument");
        ONECARD_ASSIGN_OR_RETURN(ExprPtr v, parse_expression(true));
        e.args.push_back(std::move(v));
      }
      if (!is_op(",")) break;
      advance();
    }
    return expect_op(")");
  }

  Result<ExprPtr> parse_call(ExprPtr target) {
    auto e = make(ExprKind::kCall, target->offset);
    e->target = std::move(target);
    ONECARD_TRY(parse_args(*e));
    return ExprPtr(std::move(e));
  }

  Result<ExprPtr> parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        advance();
        ONECARD_ASSIGN_OR_RETURN(node, parse_filter(std::move(node)));
      } else if (is_name("is")) {
        ONECARD_ASSIGN_OR_RETURN(node, parse_test(std::move(node)));
      } else if (is_op("(")) {
        ONECARD_ASSIGN_OR_RETURN(node, parse_call(std::move(node)));
      } else {
        return node;
      }
    }
  }

  Result<ExprPtr> parse_filter(ExprPtr target) {
    auto e = make(ExprKind::kFilter, cur().offset);
    ONECARD_ASSIGN_OR_RETURN(e->name, expect_name("a filter name after '|'"));
    if (!has_filter(e->name)) {
      if (soft_ == 0) return error_at(e->offset, fmt::format("unknown filter '{}'", e->name));
      e->unknown = true;
    }
    e->target = std::move(target);
    if (is_op("(")) ONECARD_TRY(parse_args(*e));
    return ExprPtr(std::move(e));
  }

  Result<ExprPtr> parse_test(ExprPtr target) {
    advance();  // is
    auto e = make(ExprKind::kTest, cur().offset);
    if (is_name("not")) {
      e->negated = true;
      advance();
    }
    e->offset = cur().offset;
    ONECARD_ASSIGN_OR_RETURN(e->name, expect_name("a test name after 'is'"));
    if (!has_test(e->name)) {
      if (soft_ == 0) return error_at(e->offset, fmt::format("unknown test '{}'", e->name));
      e->unknown = true;
    }
    e->target = std::move(target);
    if (is_op("(")) {
      ONECARD_TRY(parse_args(*e));
    } else if ((cur().type == TokenType::kName || cur().type == TokenType::kString ||
                cur().type == TokenType::kInt || cur().type == TokenType::kFloat || is_op("[") ||
                is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      // `x is divisibleby 3`: one argument without parentheses.
      ONECARD_ASSIGN_OR_RETURN(ExprPtr arg, parse_primary());
      ONECARD_ASSIGN_OR_RETURN(arg, parse_postfix(std::move(arg)));
      e->args.push_back(std::move(arg));
    }
    return ExprPtr(std::move(e));
  }

  const std::vector<Token>& toks_;
  const std::string& src_;
  size_t pos_ = 0;
  int depth_ = 0;
  int soft_ = 0;  // inside `if` / conditional expressions of the current frame
  int loop_depth_ = 0;
  std::vector<Stmt*> macro_stack_;
};

}  // namespace

Result<Body> parse(const std::vector<Token>& tokens, const std::string& source) {
  return Parser(tokens, source).run();
}

}  // namespace onecard::text::jinja
