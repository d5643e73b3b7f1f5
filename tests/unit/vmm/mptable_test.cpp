#include "vmm/boot/mptable.hpp"

#include <gtest/gtest.h>

#include "test_files.hpp"

#include <cstring>

#include "vmm/boot/layout.hpp"

namespace pv::vmm::boot {
namespace {

using test::copy;

struct Tables {
    MpFloatingPointer pointer;
    MpConfigHeader header;
    std::vector<uint8_t> config;  // header + entries
};

Tables write_and_read(uint32_t vcpus) {
    auto memory = GuestMemory::create({{0, 0x100000}});
    EXPECT_TRUE(memory);
    EXPECT_TRUE(write_mptable(*memory, layout::kMpTableAddress, vcpus));
    Tables tables{};
    tables.pointer = *memory->read<MpFloatingPointer>(layout::kMpTableAddress);
    tables.header = *memory->read<MpConfigHeader>(tables.pointer.physical_pointer);
    tables.config.resize(tables.header.base_table_length);
    EXPECT_TRUE(memory->read_bytes(copy(tables.pointer.physical_pointer), tables.config));
    return tables;
}

TEST(MpTable, FloatingPointerAndConfigTableChecksumToZero) {
    Tables tables = write_and_read(2);
    EXPECT_EQ(std::memcmp(copy(tables.pointer.signature), "_MP_", 4), 0);
    EXPECT_EQ(copy(tables.pointer.length), 1);
    EXPECT_EQ(copy(tables.pointer.spec_revision), 4);
    EXPECT_EQ(byte_sum(reinterpret_cast<uint8_t*>(&tables.pointer), 16), 0);
    EXPECT_EQ(std::memcmp(copy(tables.header.signature), "PCMP", 4), 0);
    EXPECT_EQ(byte_sum(tables.config.data(), tables.config.size()), 0);
    EXPECT_EQ(copy(tables.header.lapic_address), 0xfee00000u);
    // The floating pointer must be in the last KiB of base memory (spec 4).
    EXPECT_GE(layout::kMpTableAddress, 0x9fc00u);
    EXPECT_LE(layout::kMpTableAddress + mptable_size(kMaxMpVcpus), 0xa0000u);
}

TEST(MpTable, EntriesDescribeCpusBusIoapicAndInterrupts) {
    const uint32_t vcpus = 4;
    Tables tables = write_and_read(vcpus);
    EXPECT_EQ(copy(tables.header.entry_count), vcpus + 1 + 1 + kIoapicPins + 2);
    const uint8_t* cursor = tables.config.data() + sizeof(MpConfigHeader);
    for (uint32_t cpu = 0; cpu < vcpus; ++cpu) {
        MpProcessorEntry processor;
        std::memcpy(&processor, cursor, sizeof(processor));
        cursor += sizeof(processor);
        EXPECT_EQ(copy(processor.type), kMpEntryProcessor);
        EXPECT_EQ(copy(processor.lapic_id), cpu);
        EXPECT_EQ(copy(processor.cpu_flags), cpu == 0 ? 3 : 1) << "only CPU 0 is the BSP";
    }
    MpBusEntry bus;
    std::memcpy(&bus, cursor, sizeof(bus));
    cursor += sizeof(bus);
    EXPECT_EQ(copy(bus.type), kMpEntryBus);
    EXPECT_EQ(std::memcmp(copy(bus.bus_type), "ISA   ", 6), 0);
    MpIoapicEntry ioapic;
    std::memcpy(&ioapic, cursor, sizeof(ioapic));
    cursor += sizeof(ioapic);
    EXPECT_EQ(copy(ioapic.type), kMpEntryIoapic);
    EXPECT_EQ(copy(ioapic.ioapic_id), vcpus + 1);
    EXPECT_EQ(copy(ioapic.address), 0xfec00000u);
    EXPECT_EQ(copy(ioapic.flags) & 1, 1);
    for (uint32_t pin = 0; pin < kIoapicPins; ++pin) {
        MpInterruptEntry entry;
        std::memcpy(&entry, cursor, sizeof(entry));
        cursor += sizeof(entry);
        EXPECT_EQ(copy(entry.type), kMpEntryIoInterrupt);
        EXPECT_EQ(copy(entry.source_bus_irq), pin);
        EXPECT_EQ(copy(entry.destination_pin), pin);
        EXPECT_EQ(copy(entry.destination_apic_id), copy(ioapic.ioapic_id));
    }
    MpInterruptEntry lint0, lint1;
    std::memcpy(&lint0, cursor, sizeof(lint0));
    std::memcpy(&lint1, cursor + sizeof(lint0), sizeof(lint1));
    EXPECT_EQ(copy(lint0.type), kMpEntryLocalInterrupt);
    EXPECT_EQ(copy(lint0.interrupt_type), kMpInterruptExtInt);
    EXPECT_EQ(copy(lint0.destination_pin), 0);
    EXPECT_EQ(copy(lint1.interrupt_type), kMpInterruptNmi);
    EXPECT_EQ(copy(lint1.destination_apic_id), 0xff);
    EXPECT_EQ(copy(lint1.destination_pin), 1);
    EXPECT_EQ(cursor + 2 * sizeof(MpInterruptEntry), tables.config.data() + tables.config.size());
}

TEST(MpTable, VcpuCountAndPlacementAreChecked) {
    auto memory = GuestMemory::create({{0, 0x100000}});
    ASSERT_TRUE(memory);
    EXPECT_FALSE(write_mptable(*memory, layout::kMpTableAddress, 0));
    EXPECT_FALSE(write_mptable(*memory, layout::kMpTableAddress, kMaxMpVcpus + 1));
    EXPECT_TRUE(write_mptable(*memory, layout::kMpTableAddress, kMaxMpVcpus));
    EXPECT_FALSE(write_mptable(*memory, 0x9ff00, 8)) << "would cross 0xa0000";
    EXPECT_FALSE(write_mptable(*memory, 0x9fc08, 1)) << "must be paragraph aligned";
}

}  // namespace
}  // namespace pv::vmm::boot
