#pragma once

// Intel MultiProcessor Specification 1.4 tables (chapter 4): the floating
// pointer, the configuration table header, one processor entry per vCPU, an
// ISA bus, the IOAPIC, its 24 interrupt assignments and the two local
// interrupts (LINT0 ExtINT from the PIC, LINT1 NMI). Linux finds SMP and the
// IOAPIC through these tables when there is no ACPI.

#include <cstdint>

#include "common/error.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace pv::vmm::boot {

#pragma pack(push, 1)
struct MpFloatingPointer {
    char signature[4];  // "_MP_"
    uint32_t physical_pointer;
    uint8_t length;  // in 16-byte paragraphs
    uint8_t spec_revision;
    uint8_t checksum;
    uint8_t feature[5];
};

struct MpConfigHeader {
    char signature[4];  // "PCMP"
    uint16_t base_table_length;
    uint8_t spec_revision;
    uint8_t checksum;
    char oem_id[8];
    char product_id[12];
    uint32_t oem_table_pointer;
    uint16_t oem_table_size;
    uint16_t entry_count;
    uint32_t lapic_address;
    uint16_t extended_table_length;
    uint8_t extended_table_checksum;
    uint8_t reserved;
};

struct MpProcessorEntry {
    uint8_t type;  // 0
    uint8_t lapic_id;
    uint8_t lapic_version;
    uint8_t cpu_flags;  // bit 0 enabled, bit 1 bootstrap processor
    uint32_t cpu_signature;
    uint32_t feature_flags;
    uint32_t reserved[2];
};

struct MpBusEntry {
    uint8_t type;  // 1
    uint8_t bus_id;
    char bus_type[6];
};

struct MpIoapicEntry {
    uint8_t type;  // 2
    uint8_t ioapic_id;
    uint8_t ioapic_version;
    uint8_t flags;  // bit 0 enabled
    uint32_t address;
};

struct MpInterruptEntry {
    uint8_t type;  // 3 I/O interrupt, 4 local interrupt
    uint8_t interrupt_type;
    uint16_t flags;  // polarity and trigger mode; 0 conforms to the bus
    uint8_t source_bus_id;
    uint8_t source_bus_irq;
    uint8_t destination_apic_id;
    uint8_t destination_pin;
};
#pragma pack(pop)

static_assert(sizeof(MpFloatingPointer) == 16);
static_assert(sizeof(MpConfigHeader) == 44);
static_assert(sizeof(MpProcessorEntry) == 20);
static_assert(sizeof(MpBusEntry) == 8);
static_assert(sizeof(MpIoapicEntry) == 8);
static_assert(sizeof(MpInterruptEntry) == 8);

inline constexpr uint8_t kMpEntryProcessor = 0;
inline constexpr uint8_t kMpEntryBus = 1;
inline constexpr uint8_t kMpEntryIoapic = 2;
inline constexpr uint8_t kMpEntryIoInterrupt = 3;
inline constexpr uint8_t kMpEntryLocalInterrupt = 4;
inline constexpr uint8_t kMpInterruptInt = 0;
inline constexpr uint8_t kMpInterruptNmi = 1;
inline constexpr uint8_t kMpInterruptExtInt = 3;
inline constexpr uint32_t kIoapicPins = 24;
inline constexpr uint32_t kMaxMpVcpus = 32;

// The IOAPIC takes the APIC ID after the last vCPU's.
[[nodiscard]] inline uint8_t ioapic_id(uint32_t vcpu_count) {
    return static_cast<uint8_t>(vcpu_count + 1);
}

// Total bytes the tables need for `vcpu_count` processors.
[[nodiscard]] uint64_t mptable_size(uint32_t vcpu_count);

// Writes the tables at `address`; the result must end before 0xa0000 so it
// stays in the spec's search area.
[[nodiscard]] Result<void> write_mptable(const GuestMemory& memory, uint64_t address,
                                         uint32_t vcpu_count);

// Sum of bytes modulo 256; a valid MP structure sums to 0 (spec 4.1, 4.2).
[[nodiscard]] uint8_t byte_sum(const uint8_t* data, size_t length);

}  // namespace pv::vmm::boot
