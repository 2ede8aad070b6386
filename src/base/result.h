// Error values instead of exceptions: every fallible call returns Result<T> (or Status), and the message of
// an Error is meant for the user, naming the file, key, tensor or field that was wrong.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace onecard {

class Error {
 public:
  explicit Error(std::string message) : message_(std::move(message)) {}
  const std::string& message() const { return message_; }
  // Adds outer context: "ctx: inner message".
  Error with_context(std::string_view ctx) const { return Error(fmt::format("{}: {}", ctx, message_)); }

 private:
  std::string message_;
};

template <class... Args>
Error make_error(fmt::format_string<Args...> f, Args&&... args) {
  return Error(fmt::format(f, std::forward<Args>(args)...));
}

[[noreturn]] inline void die_on_unchecked(const Error& e) {
  std::fprintf(stderr, "onecard: internal error: value() of a failed Result: %s\n", e.message().c_str());
  std::abort();
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    if (!ok()) die_on_unchecked(error());
    return std::get<0>(v_);
  }
  const T& value() const& {
    if (!ok()) die_on_unchecked(error());
    return std::get<0>(v_);
  }
  T&& value() && {
    if (!ok()) die_on_unchecked(error());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_{""};
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace onecard

#define ONECARD_CONCAT_INNER(a, b) a##b
#define ONECARD_CONCAT(a, b) ONECARD_CONCAT_INNER(a, b)

// Returns the error of a failed Result/Status from the enclosing function.
#define ONECARD_TRY(expr)                                              \
  do {                                                                 \
    auto&& onecard_try_result_ = (expr);                               \
    if (!onecard_try_result_.ok()) return onecard_try_result_.error(); \
  } while (0)

#define ONECARD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.error();                  \
  lhs = std::move(tmp).value()

// ONECARD_ASSIGN_OR_RETURN(auto x, f()); binds x to the value or returns f's error.
#define ONECARD_ASSIGN_OR_RETURN(lhs, expr) \
  ONECARD_ASSIGN_OR_RETURN_IMPL(ONECARD_CONCAT(onecard_result_, __COUNTER__), lhs, expr)
