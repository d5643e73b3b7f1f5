// Fuzz target: the host's reader of rpm's sqlite database (guestfs/rpm/),
// which opens what a hostile guest wrote with SQLite and parses each header
// with librpm; the whole input is the rpmdb.sqlite file.

#include <cstddef>
#include <cstdint>
#include <string>

#include "guestfs/rpm/rpm_database.hpp"
#include "tests/fuzz/guest_packages_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto packages =
        pv::guestfs::parse_rpm_database(std::string(reinterpret_cast<const char*>(data), size));
    if (packages)
        pv::fuzz::check_packages(*packages, false);
    return 0;
}
