// Errors as values, the one idiom across rooms: a function that can fail returns Result<T> (Result<bool> when
// there is nothing to return), whose Error carries one line with its context. Exceptions stay inside the code
// that calls a library which throws (nlohmann::json, std::filesystem) and never cross a room boundary.
// Result is [[nodiscard]]: an error cannot be dropped silently.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace npt {

struct Error {
    std::string message;  // one line: what is wrong and, where it helps, what to do
};

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
    Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

}  // namespace npt
