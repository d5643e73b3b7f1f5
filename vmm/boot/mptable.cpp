#include "vmm/boot/mptable.hpp"

#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "vmm/boot/layout.hpp"

namespace pv::vmm::boot {

namespace {

constexpr uint8_t kSpecRevision = 4;     // MP spec 1.4
constexpr uint8_t kLapicVersion = 0x14;  // integrated APIC, as KVM reports
constexpr uint8_t kIoapicVersion = 0x11;
constexpr uint8_t kCpuEnabled = 1;
constexpr uint8_t kCpuBootstrap = 2;
constexpr uint8_t kIsaBusId = 0;
// CPU signature: family 6; feature flags: FPU and APIC (spec 4.3.1 table 4-5).
constexpr uint32_t kCpuSignature = 0x600;
constexpr uint32_t kCpuFeatures = (1 << 0) | (1 << 9);

template <class T>
void append(std::vector<uint8_t>& table, const T& entry) {
    auto bytes = reinterpret_cast<const uint8_t*>(&entry);
    table.insert(table.end(), bytes, bytes + sizeof(T));
}

void append_entries(std::vector<uint8_t>& table, uint32_t vcpu_count) {
    for (uint32_t cpu = 0; cpu < vcpu_count; ++cpu) {
        MpProcessorEntry processor{};
        processor.type = kMpEntryProcessor;
        processor.lapic_id = static_cast<uint8_t>(cpu);
        processor.lapic_version = kLapicVersion;
        processor.cpu_flags = kCpuEnabled | (cpu == 0 ? kCpuBootstrap : 0);
        processor.cpu_signature = kCpuSignature;
        processor.feature_flags = kCpuFeatures;
        append(table, processor);
    }
    MpBusEntry bus{kMpEntryBus, kIsaBusId, {'I', 'S', 'A', ' ', ' ', ' '}};
    append(table, bus);
    MpIoapicEntry ioapic{kMpEntryIoapic, ioapic_id(vcpu_count), kIoapicVersion, 1,
                         static_cast<uint32_t>(layout::kIoapicAddress)};
    append(table, ioapic);
    // ISA IRQ n arrives on IOAPIC pin n, matching KVM's default GSI routing.
    for (uint8_t pin = 0; pin < kIoapicPins; ++pin)
        append(table, MpInterruptEntry{kMpEntryIoInterrupt, kMpInterruptInt, 0, kIsaBusId, pin,
                                       ioapic_id(vcpu_count), pin});
    // LINT0 takes the PIC's ExtINT on the BSP; LINT1 is NMI on every CPU
    // (destination 0xff), the virtual-wire setup of spec 3.6.2.
    append(table,
           MpInterruptEntry{kMpEntryLocalInterrupt, kMpInterruptExtInt, 0, kIsaBusId, 0, 0, 0});
    append(table,
           MpInterruptEntry{kMpEntryLocalInterrupt, kMpInterruptNmi, 0, kIsaBusId, 0, 0xff, 1});
}

}  // namespace

uint8_t byte_sum(const uint8_t* data, size_t length) {
    uint8_t sum = 0;
    for (size_t index = 0; index < length; ++index)
        sum = static_cast<uint8_t>(sum + data[index]);
    return sum;
}

uint64_t mptable_size(uint32_t vcpu_count) {
    return sizeof(MpFloatingPointer) + sizeof(MpConfigHeader) +
           vcpu_count * sizeof(MpProcessorEntry) + sizeof(MpBusEntry) + sizeof(MpIoapicEntry) +
           (kIoapicPins + 2) * sizeof(MpInterruptEntry);
}

Result<void> write_mptable(const GuestMemory& memory, uint64_t address, uint32_t vcpu_count) {
    if (vcpu_count == 0 || vcpu_count > kMaxMpVcpus)
        return fail(
            make_error("write MP table", fmt::format("{} vCPUs (1..{})", vcpu_count, kMaxMpVcpus)));
    if (address % 16 != 0 || address + mptable_size(vcpu_count) > 0xa0000)
        return fail(make_error("write MP table", "outside the base-memory search area"));
    std::vector<uint8_t> entries;
    append_entries(entries, vcpu_count);

    MpConfigHeader header{};
    std::memcpy(header.signature, "PCMP", 4);
    header.base_table_length = static_cast<uint16_t>(sizeof(header) + entries.size());
    header.spec_revision = kSpecRevision;
    std::memcpy(header.oem_id, "PATCHVSR", 8);
    std::memcpy(header.product_id, "MICROVM     ", 12);
    header.entry_count = static_cast<uint16_t>(vcpu_count + 2 + kIoapicPins + 2);
    header.lapic_address = static_cast<uint32_t>(layout::kLapicAddress);
    std::vector<uint8_t> config;
    append(config, header);
    config.insert(config.end(), entries.begin(), entries.end());
    config[offsetof(MpConfigHeader, checksum)] =
        static_cast<uint8_t>(-byte_sum(config.data(), config.size()));

    MpFloatingPointer pointer{};
    std::memcpy(pointer.signature, "_MP_", 4);
    pointer.physical_pointer = static_cast<uint32_t>(address + sizeof(MpFloatingPointer));
    pointer.length = 1;
    pointer.spec_revision = kSpecRevision;
    pointer.checksum = static_cast<uint8_t>(
        -byte_sum(reinterpret_cast<const uint8_t*>(&pointer), sizeof(pointer)));

    PV_TRY(memory.write(address, pointer));
    PV_TRY(memory.write_bytes(address + sizeof(pointer), config));
    return {};
}

}  // namespace pv::vmm::boot
