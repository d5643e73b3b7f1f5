#pragma once

// The seam between patchvisor's public API (include/patchvisor/) and its
// internals: errors and formats cross here, so the public types never
// depend on internal ones and the other way round.

#include <patchvisor/error.hpp>
#include <patchvisor/image.hpp>

#include "common/error.hpp"
#include "imgfmt/image.hpp"

namespace pv::api {

[[nodiscard]] inline patchvisor::Error to_public(Error error) {
    return patchvisor::Error{std::move(error.operation), std::move(error.detail), error.code};
}

[[nodiscard]] inline Error to_internal(patchvisor::Error error) {
    return Error{std::move(error.operation), std::move(error.detail), error.code};
}

// An internal result as a public one.
template <class T>
[[nodiscard]] patchvisor::Result<T> to_public(Result<T>&& result) {
    return std::move(result).map_error([](Error error) { return to_public(std::move(error)); });
}

[[nodiscard]] inline patchvisor::ImageFormat to_public(img::Format format) {
    switch (format) {
        case img::Format::Raw:
            return patchvisor::ImageFormat::Raw;
        case img::Format::Qcow:
            return patchvisor::ImageFormat::Qcow;
        case img::Format::Qcow2:
            return patchvisor::ImageFormat::Qcow2;
    }
    return patchvisor::ImageFormat::Raw;
}

[[nodiscard]] inline img::Format to_internal(patchvisor::ImageFormat format) {
    switch (format) {
        case patchvisor::ImageFormat::Raw:
            return img::Format::Raw;
        case patchvisor::ImageFormat::Qcow:
            return img::Format::Qcow;
        case patchvisor::ImageFormat::Qcow2:
            return img::Format::Qcow2;
    }
    return img::Format::Raw;
}

[[nodiscard]] inline pv::Access to_internal(patchvisor::Access access) {
    return access == patchvisor::Access::ReadWrite ? pv::Access::ReadWrite : pv::Access::ReadOnly;
}

[[nodiscard]] inline img::Backing to_internal(patchvisor::Backing backing) {
    return backing == patchvisor::Backing::Allow ? img::Backing::Allow : img::Backing::Refuse;
}

}  // namespace pv::api
