// Fuzz target: the host's own read of a guest's package database, over the
// input as a raw disk a hostile guest wrote: the partition table, the
// ext2/3/4 filesystem through libext2fs and our I/O manager, os-release,
// the status file, dpkg's journal directory. Run in this process (the job
// runs the same code in a confined child), and the reader's promises are
// checked on what it returns.

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "guestfs/package_database.hpp"
#include "imgfmt/image.hpp"
#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/guest_packages_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const pv::fuzz::MemoryFile file(std::string_view(reinterpret_cast<const char*>(data), size));
    auto disk = pv::img::open_image(file.path(), pv::img::Format::Raw, pv::Access::ReadOnly,
                                    pv::img::Backing::Refuse);
    if (!disk)
        return 0;
    const auto database =
        pv::guestfs::read_package_database(**disk, pv::guestfs::DatabaseKind::Dpkg);
    if (database)
        pv::fuzz::check_packages(database->packages);
    else if (database.error().message().empty())
        std::abort();
    return 0;
}
