#pragma once

// RAII owner of /dev/kvm: the system-level ioctls (KVM API, Documentation/
// virt/kvm/api.rst section 4) and the factory for VMs.

#include <linux/kvm.h>

#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace pv::vmm::kvm {

class Vm;

class System {
  public:
    // Opens the device and checks KVM_GET_API_VERSION == 12 and the
    // capabilities this VMM depends on.
    [[nodiscard]] static Result<System> open(const std::string& path = "/dev/kvm");

    [[nodiscard]] Result<Vm> create_vm() const;
    [[nodiscard]] Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() const;
    [[nodiscard]] Result<int> check_extension(int capability) const;
    [[nodiscard]] size_t vcpu_mmap_size() const { return m_vcpu_mmap_size; }
    [[nodiscard]] int fd() const { return m_fd.get(); }

  private:
    Fd m_fd;
    size_t m_vcpu_mmap_size = 0;
};

}  // namespace pv::vmm::kvm
