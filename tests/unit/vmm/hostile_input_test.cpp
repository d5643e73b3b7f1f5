// Seeded random mutation of the loaders' and the UART's inputs: whatever a
// hostile image or guest does, the VMM answers with an error or a defined
// state, never a crash or a write outside guest RAM.

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "test_files.hpp"
#include "vmm/boot/bzimage.hpp"
#include "vmm/boot/kernel_loader.hpp"
#include "vmm/boot/layout.hpp"
#include "vmm/devices/serial/serial.hpp"

namespace pv::vmm {
namespace {

std::vector<uint8_t> mutate(std::vector<uint8_t> bytes, std::mt19937_64& random) {
    std::uniform_int_distribution<int> count(1, 8);
    for (int edit = count(random); edit > 0 && !bytes.empty(); --edit) {
        size_t at = random() % bytes.size();
        switch (random() % 4) {
            case 0:
                bytes[at] = static_cast<uint8_t>(random());
                break;
            case 1:
                bytes[at] ^= static_cast<uint8_t>(1u << (random() % 8));
                break;
            case 2:
                bytes.resize(at);  // truncate
                break;
            default:
                std::fill_n(bytes.begin() + at, std::min<size_t>(8, bytes.size() - at), 0xff);
                break;
        }
    }
    return bytes;
}

TEST(HostileInput, MutatedTestGuestElfLoadsOrFailsCleanly) {
    auto original = test::read_whole_file(test::testguest_path());
    ASSERT_FALSE(original.empty());
    auto memory = GuestMemory::create(layout::ram_regions(32 * layout::kMiB));
    ASSERT_TRUE(memory);
    std::mt19937_64 random(5);
    int loaded = 0;
    for (int round = 0; round < 3000; ++round) {
        auto bytes = mutate(original, random);
        auto result = boot::load_kernel(*memory, {bytes, {}, "x"});
        if (result) {
            ++loaded;
            EXPECT_GE(result->entry, layout::kHighMemoryStart);
            EXPECT_LE(result->kernel_end, 32 * layout::kMiB);
        } else {
            EXPECT_FALSE(result.error().message().empty());
        }
    }
    // Mutations in padding keep the image valid; most others must not.
    EXPECT_GT(loaded, 0);
    EXPECT_LT(loaded, 3000);
}

TEST(HostileInput, MutatedBzImageHeadersParseOrFailCleanly) {
    std::vector<uint8_t> file(5 * 512 + 8192, 0);
    boot::SetupHeader header{};
    header.setup_sects = 4;
    header.boot_flag = boot::kBootFlagMagic;
    header.header = boot::kHdrSMagic;
    header.version = 0x020f;
    header.loadflags = boot::kLoadedHigh;
    header.xloadflags = boot::kXlfKernel64;
    header.cmdline_size = 2047;
    header.init_size = 0x10000;
    std::memcpy(file.data() + 0x1f1, &header, sizeof(header));
    auto memory = GuestMemory::create(layout::ram_regions(32 * layout::kMiB));
    ASSERT_TRUE(memory);
    std::mt19937_64 random(7);
    for (int round = 0; round < 3000; ++round) {
        auto bytes = mutate(file, random);
        auto parsed = boot::parse_bzimage(bytes);
        if (parsed) {
            EXPECT_LT(parsed->kernel_file_offset, bytes.size());
        }
        auto result = boot::load_kernel(*memory, {bytes, {}, ""});
        if (result) {
            EXPECT_EQ(result->entry, 0x100200u);
        }
    }
}

struct LevelLine : InterruptLine {
    bool high = false;
    void set_level(bool level) override { high = level; }
};

TEST(HostileInput, RandomUartAccessesKeepLineAndIirConsistent) {
    LevelLine line;
    size_t output = 0;
    Serial serial(line, [&](uint8_t) { ++output; });
    std::mt19937_64 random(11);
    for (int round = 0; round < 100000; ++round) {
        uint64_t offset = random() % 10;  // includes offsets past the 8 registers
        uint8_t value = static_cast<uint8_t>(random());
        if (random() % 2) {
            serial.write(offset, {&value, 1});
        } else {
            serial.read(offset, {&value, 1});
        }
        if (random() % 64 == 0) {
            uint8_t input[40];
            serial.enqueue_input(input);
        }
        // The INTR pin is high exactly when IIR reports a pending source;
        // peeking IIR with DLAB set is side-effect free except for THRE.
        uint8_t lcr = 0;
        serial.read(3, {&lcr, 1});
        if (lcr & 0x80)
            continue;
        uint8_t iir = 0;
        bool was_high = line.high;
        serial.read(2, {&iir, 1});
        ASSERT_EQ(was_high, !(iir & 1)) << "round " << round;
    }
    EXPECT_GT(output, 0u);
}

}  // namespace
}  // namespace pv::vmm
