// patchvisor::VmConfig (include/patchvisor/vmm.hpp): setters that record
// what MicroVm::create builds.

#include <sys/resource.h>

#include "api/convert.hpp"
#include "api/vm_config_state.hpp"

namespace patchvisor {

namespace {

static_assert(kDefaultSerialLimit == pv::vmm::VmConfig{}.serial_output_limit,
              "the public default is the VMM's own");

rlim_t to_rlimit(uint64_t value) {
    return value == UINT64_MAX ? RLIM_INFINITY : static_cast<rlim_t>(value);
}

pv::vmm::confine::Policy to_policy(const Confinement& confinement) {
    pv::vmm::confine::Policy policy;
    policy.seccomp = confinement.seccomp;
    if (confinement.limits)
        policy.limits = pv::vmm::confine::ResourceLimits{to_rlimit(confinement.limits->open_files),
                                                         to_rlimit(confinement.limits->file_size)};
    if (confinement.identity)
        policy.identity =
            pv::vmm::confine::Identity{confinement.identity->uid, confinement.identity->gid};
    return policy;
}

}  // namespace

VmConfig::VmConfig(std::string kernel) : m_state(std::make_unique<State>()) {
    m_state->config.kernel_path = std::move(kernel);
}
VmConfig::VmConfig(VmConfig&& other) noexcept = default;
VmConfig& VmConfig::operator=(VmConfig&& other) noexcept = default;
VmConfig::~VmConfig() = default;

VmConfig& VmConfig::initrd(std::string path) {
    m_state->config.initrd_path = std::move(path);
    return *this;
}

VmConfig& VmConfig::cmdline(std::string text) {
    m_state->config.cmdline = std::move(text);
    return *this;
}

VmConfig& VmConfig::memory_mib(uint64_t mib) {
    m_state->config.memory_mib = mib;
    return *this;
}

VmConfig& VmConfig::vcpus(uint32_t count) {
    m_state->config.vcpus = count;
    return *this;
}

VmConfig& VmConfig::timeout(std::chrono::milliseconds limit) {
    m_state->config.timeout = limit;
    return *this;
}

VmConfig& VmConfig::serial_log(std::string path) {
    m_state->config.serial_log_path = std::move(path);
    return *this;
}

VmConfig& VmConfig::serial_stdout(bool enabled) {
    m_state->config.serial_stdout = enabled;
    return *this;
}

VmConfig& VmConfig::serial_limit(uint64_t bytes) {
    m_state->config.serial_output_limit = bytes;
    return *this;
}

VmConfig& VmConfig::disk(DiskFile file) {
    ++m_state->disks;
    pv::vmm::DiskConfig disk;
    disk.path = std::move(file.path);
    disk.access = pv::api::to_internal(file.access);
    if (file.format)
        disk.format = pv::api::to_internal(*file.format);
    disk.backing = pv::api::to_internal(file.backing);
    m_state->config.disk = std::move(disk);
    return *this;
}

VmConfig& VmConfig::disk(Image image, Access access) {
    ++m_state->disks;
    pv::vmm::DiskConfig disk;
    disk.path = image.path();
    disk.access = image.read_only() ? pv::Access::ReadOnly : pv::api::to_internal(access);
    m_state->config.disk = std::move(disk);
    m_state->image = std::move(image);
    return *this;
}

VmConfig& VmConfig::vsock(uint64_t guest_cid, std::string uds_path) {
    ++m_state->vsocks;
    m_state->config.vsock = pv::vmm::VsockConfig{guest_cid, std::move(uds_path)};
    return *this;
}

VmConfig& VmConfig::confinement(Confinement policy) {
    m_state->config.confinement = to_policy(policy);
    return *this;
}

}  // namespace patchvisor
