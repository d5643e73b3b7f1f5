#pragma once

// Internal to guestfs: how the confined reader's child hands its result to
// the parent (confined_read.cpp). A JSON document, written by the child and
// parsed by the parent with the same limits the readers apply, since a
// child that a crafted filesystem took over could write anything.
//   {"kind": "dpkg", "location": "...", "packages": [[name, architecture,
//    version, status, installed], ...]}   or   {"error": {"operation": "...",
//    "detail": "..."}}

#include <cstddef>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "guestfs/package_database.hpp"

namespace pv::guestfs::detail {

// Far more than kMaxPackages entries of kMaxFieldBytes fields need.
inline constexpr size_t kMaxReplyBytes = 256u << 20;

[[nodiscard]] std::string encode_reply(const Result<PackageDatabase>& result);

// The database or the child's error; a malformed reply or one over the
// limits is an error of its own, naming DISK_NAME.
[[nodiscard]] Result<PackageDatabase> decode_reply(std::string_view reply,
                                                   const std::string& disk_name);

}  // namespace pv::guestfs::detail
