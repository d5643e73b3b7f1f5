#include "vmm/x86/vcpu_setup.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace pv::vmm::x86 {
namespace {

kvm_cpuid_entry2 leaf(uint32_t function, uint32_t ebx = 0, uint32_t ecx = 0, uint32_t edx = 0) {
    kvm_cpuid_entry2 entry{};
    entry.function = function;
    entry.ebx = ebx;
    entry.ecx = ecx;
    entry.edx = edx;
    return entry;
}

TEST(Cpuid, ApicIdsCountAndHypervisorBitPerVcpu) {
    std::vector<kvm_cpuid_entry2> supported = {leaf(0), leaf(1, 0xff00ffff, 0, 0),
                                               leaf(0xb, 0, 0, 77)};
    auto entries = cpuid_for_vcpu(supported, 3, 4);
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[1].ebx >> 24, 3u) << "initial APIC ID";
    EXPECT_EQ((entries[1].ebx >> 16) & 0xff, 4u) << "logical processor count";
    EXPECT_EQ(entries[1].ebx & 0xffff, 0xffffu) << "other fields kept";
    EXPECT_TRUE(entries[1].ecx & (1u << 31)) << "hypervisor present";
    EXPECT_TRUE(entries[1].edx & (1u << 28)) << "HTT with several vCPUs";
    EXPECT_EQ(entries[2].edx, 3u) << "x2APIC ID";
    auto single = cpuid_for_vcpu(supported, 0, 1);
    EXPECT_FALSE(single[1].edx & (1u << 28));
}

TEST(Msrs, BootValuesEnableMtrrsAndFastStrings) {
    auto msrs = boot_msrs();
    auto find = [&](uint32_t index) {
        return std::find_if(msrs.begin(), msrs.end(),
                            [&](const kvm_msr_entry& entry) { return entry.index == index; });
    };
    ASSERT_NE(find(0x2ff), msrs.end());
    EXPECT_EQ(find(0x2ff)->data, (1u << 11) | 6u);
    ASSERT_NE(find(0x1a0), msrs.end());
    EXPECT_EQ(find(0x1a0)->data & 1, 1u);
    ASSERT_NE(find(0xc0000082), msrs.end());
    EXPECT_EQ(find(0xc0000082)->data, 0u);
}

}  // namespace
}  // namespace pv::vmm::x86
