#pragma once

// What patchvisor::VmConfig records, for MicroVm::create to check and turn
// into the VMM's own configuration.

#include <optional>

#include <patchvisor/vmm.hpp>

#include "vmm/vm_config.hpp"

namespace patchvisor {

struct VmConfig::State {
    pv::vmm::VmConfig config;
    // The Image given to disk(Image, ...), served through api::ImageDevice.
    std::optional<Image> image;
    // Calls of disk() and vsock(): the VMM has one of each.
    int disks = 0;
    int vsocks = 0;
};

}  // namespace patchvisor
