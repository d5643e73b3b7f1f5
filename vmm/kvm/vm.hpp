#pragma once

// RAII owner of a KVM VM file descriptor and its VM-level ioctls.

#include <linux/kvm.h>

#include <cstdint>
#include <optional>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace pv::vmm::kvm {

class Vcpu;

class Vm {
  public:
    Vm(Fd fd, size_t vcpu_mmap_size) : m_fd(std::move(fd)), m_vcpu_mmap_size(vcpu_mmap_size) {}

    [[nodiscard]] Result<void> set_tss_address(uint64_t address) const;
    [[nodiscard]] Result<void> set_identity_map_address(uint64_t address) const;
    [[nodiscard]] Result<void> set_memory_region(uint32_t slot, uint64_t guest_address,
                                                 uint64_t size, void* host) const;
    // In-kernel PIC + IOAPIC + LAPICs; must precede vCPU creation.
    [[nodiscard]] Result<void> create_irqchip() const;
    // In-kernel PIT; the dummy speaker lets KVM own port 0x61 too.
    [[nodiscard]] Result<void> create_pit() const;
    // Drives a GSI of the in-kernel irqchip to a level.
    [[nodiscard]] Result<void> set_irq_line(uint32_t gsi, bool level) const;
    // KVM_IOEVENTFD (api.rst 4.59): a guest write of LENGTH bytes to the MMIO
    // ADDRESS (equal to DATAMATCH, when given) signals EVENT_FD inside the
    // kernel instead of exiting to a vCPU thread; other writes still exit.
    [[nodiscard]] Result<void> add_ioeventfd(uint64_t address, uint32_t length, int event_fd,
                                             std::optional<uint64_t> datamatch) const;
    // KVM_IRQFD (api.rst 4.75): each write to EVENT_FD pulses GSI on the
    // in-kernel irqchip (assert then deassert, an edge).
    [[nodiscard]] Result<void> add_irqfd(uint32_t gsi, int event_fd) const;
    [[nodiscard]] Result<Vcpu> create_vcpu(uint32_t id) const;

    [[nodiscard]] int fd() const { return m_fd.get(); }

  private:
    Fd m_fd;
    size_t m_vcpu_mmap_size;
};

}  // namespace pv::vmm::kvm
