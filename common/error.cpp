#include "common/error.hpp"

#include <cstring>

namespace pv {

std::string Error::message() const {
    if (detail.empty())
        return operation;
    return operation + ": " + detail;
}

Error errno_error(std::string operation, int code) {
    return Error{std::move(operation), std::strerror(code), code};
}

Error make_error(std::string operation, std::string detail) {
    return Error{std::move(operation), std::move(detail), 0};
}

Error with_context(Error error, const std::string& context) {
    error.operation = context + ": " + error.operation;
    return error;
}

}  // namespace pv
