#pragma once

// patchvisor's public C++ API: errors as values. Every call that can fail
// returns patchvisor::Result<T> (tl::expected, Debian's libexpected-dev);
// nothing in the API throws.

#include <string>

#include <tl/expected.hpp>

// What the shared libraries export; everything else in them is hidden.
#define PATCHVISOR_API __attribute__((visibility("default")))

namespace patchvisor {

struct Error {
    // What was being done, naming the object: "open /vm/disk.qcow2".
    std::string operation{};
    // The problem: strerror text, or a complaint about the file or request.
    std::string detail{};
    // errno when the failure came from the system, 0 otherwise.
    int code = 0;

    // "OPERATION: DETAIL", the line a command prints.
    [[nodiscard]] std::string message() const {
        return detail.empty() ? operation : operation + ": " + detail;
    }
};

template <class T>
using Result = tl::expected<T, Error>;

}  // namespace patchvisor
