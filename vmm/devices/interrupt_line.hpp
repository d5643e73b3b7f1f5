#pragma once

// What a device raises: one interrupt input of the irqchip. The KVM-backed
// implementation uses KVM_IRQ_LINE; tests use a recorder; virtio-mmio
// can implement it over an irqfd.

namespace pv::vmm {

class InterruptLine {
  public:
    virtual ~InterruptLine() = default;
    virtual void set_level(bool high) = 0;
};

}  // namespace pv::vmm
