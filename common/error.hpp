#pragma once

// Errors as values: every fallible operation returns
// pv::Result<T>; only main() turns an Error into a message and an exit code.

#include <cerrno>
#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace pv {

struct Error {
    // What was being done, naming the object: "read /img/a.qcow2 at 65536".
    std::string operation;
    // The problem: strerror text, a libqcow message or a format complaint.
    std::string detail;
    // errno when the failure came from the system, 0 otherwise.
    int code = 0;

    [[nodiscard]] std::string message() const;
};

template <class T>
using Result = tl::expected<T, Error>;

[[nodiscard]] Error errno_error(std::string operation, int code = errno);
[[nodiscard]] Error make_error(std::string operation, std::string detail);

// Adds context to an error that passes through: "open image: read header: ...".
[[nodiscard]] Error with_context(Error error, const std::string& context);

[[nodiscard]] inline tl::unexpected<Error> fail(Error error) {
    return tl::unexpected<Error>(std::move(error));
}

// For clean-ups that try every step: FIRST keeps the first failure seen.
inline void keep_first(Result<void>& first, Result<void> next) {
    if (first && !next)
        first = std::move(next);
}

namespace detail {
template <class T>
T take_value(tl::expected<T, Error>&& result) {
    return std::move(*result);
}
inline void take_value(tl::expected<void, Error>&&) {}
}  // namespace detail

}  // namespace pv

// PV_TRY(expr): evaluates a Result; returns its error from the enclosing
// function, or yields its value (GCC statement expression, like SerenityOS TRY).
#define PV_TRY(...)                                                 \
    ({                                                              \
        auto _pv_result = (__VA_ARGS__);                            \
        if (!_pv_result) [[unlikely]]                               \
            return ::tl::unexpected(std::move(_pv_result).error()); \
        ::pv::detail::take_value(std::move(_pv_result));            \
    })
