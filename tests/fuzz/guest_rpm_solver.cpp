// Fuzz target: the guest's rpmdb as libsolv reads it for an rpm-md update
// (patcher/repo/rpmmd/): each header librpm accepted is parsed again by
// libsolv in the host process, then solved against a repository with no
// packages. The whole input is the rpmdb.sqlite file.

#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "patcher/repo/rpmmd/rpmmd_resolver.hpp"

namespace {

// An empty repository's primary.xml, written once.
pv::patcher::repo::RpmMdRepository empty_repository() {
    std::string dir = "/tmp/pv-fuzz-rpm-solver-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr)
        abort();
    pv::patcher::repo::RpmMdRepository repository;
    repository.root = dir;
    repository.primary = dir + "/primary.xml";
    std::ofstream(repository.primary)
        << "<?xml version=\"1.0\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" "
           "packages=\"0\"></metadata>\n";
    return repository;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const auto repository = empty_repository();
    const auto resolved = pv::patcher::repo::resolve_rpm_upgrade(
        repository, std::string(reinterpret_cast<const char*>(data), size),
        pv::patcher::repo::UpgradeMode::full);
    // Nothing to install from an empty repository.
    if (resolved && !resolved->resolution.plan.empty())
        abort();
    return 0;
}
