#pragma once

// What the hostile double does to the guest's disk instead of running dpkg:
// it mounts the guest's root as pv-agent would (agent/rootfs.hpp) and
// rewrites the Version of some packages in dpkg's status file.

#include <map>
#include <string>

namespace pv::hostile {

// Sets the Version of each package named in VERSIONS in the status file of
// the guest on DISK; false (with a message on stderr) when that fails.
[[nodiscard]] bool write_versions(const std::string& disk,
                                  const std::map<std::string, std::string>& versions);

}  // namespace pv::hostile
