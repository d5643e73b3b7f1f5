// Fuzz target: the host's parser of dpkg's status file (guestfs/dpkg/),
// which reads what a hostile guest wrote; the whole input is the file.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "guestfs/dpkg/dpkg_database.hpp"
#include "tests/fuzz/guest_packages_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto packages =
        pv::guestfs::parse_dpkg_status(std::string_view(reinterpret_cast<const char*>(data), size));
    if (packages)
        pv::fuzz::check_packages(*packages);
    return 0;
}
