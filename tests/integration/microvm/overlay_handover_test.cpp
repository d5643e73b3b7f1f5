// The overlay hand-over of the microvm sandbox (patcher/sandbox/sandbox.hpp,
// OverlayAccess::HandedOver), with a second imgfmt object standing in for
// patchvisor-vmm: the job's object is flushed, another object opens the
// file and writes it (new L2 tables and refcount blocks included), then the
// job drops its stale object and reopens the file. Dropping the stale object
// must not write a byte, and the reopened overlay must hold both writers'
// data, with qemu-img check clean.

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "imgfmt/image.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"
#include "tests/support/support.hpp"

namespace pv::img {
namespace {

std::vector<std::byte> pattern(uint8_t seed, size_t length) {
    std::vector<std::byte> bytes(length);
    for (size_t i = 0; i < length; ++i)
        bytes[i] = static_cast<std::byte>(seed + i * 7);
    return bytes;
}

void write(BlockDevice& device, uint8_t seed, size_t length, uint64_t offset) {
    const auto bytes = pattern(seed, length);
    auto written = device.write_at(bytes, offset);
    ASSERT_TRUE(written) << written.error().message();
}

void expect_bytes(BlockDevice& device, uint8_t seed, size_t length, uint64_t offset) {
    std::vector<std::byte> bytes(length);
    auto read = device.read_at(bytes, offset);
    ASSERT_TRUE(read) << read.error().message();
    EXPECT_TRUE(bytes == pattern(seed, length)) << "wrong bytes at " << offset;
}

TEST(OverlayHandOver, StaleObjectWritesNothingAndTheReopenSeesBothWriters) {
    test::TempDir dir;
    const auto base_path = dir.file("base.raw");
    test::must("truncate -s 2G " + test::quote(base_path));
    const auto overlay_path = dir.file("base.overlay.qcow2");
    auto base = open_image(base_path, Access::ReadOnly, Backing::Refuse);
    ASSERT_TRUE(base) << base.error().message();
    auto job = Qcow2Image::create_overlay(overlay_path, std::move(*base), base_path, Format::Raw);
    ASSERT_TRUE(job) << job.error().message();

    // The job writes a little, then hands the file over.
    write(**job, 1, 4096, 0);
    ASSERT_TRUE((*job)->flush());
    {
        // "patchvisor-vmm": its own object, writing far apart so that it
        // allocates L2 tables and grows the file past what the job cached.
        auto vmm = Qcow2Image::open(overlay_path, Access::ReadWrite, Backing::Allow);
        ASSERT_TRUE(vmm) << vmm.error().message();
        write(**vmm, 2, 65536, 1ull << 30);
        write(**vmm, 3, 512, 4096);
        write(**vmm, 4, 3 * 65536 + 100, (1ull << 31) - 4 * 65536);
        ASSERT_TRUE((*vmm)->flush());
    }
    const auto before = test::sha256_of_file(overlay_path);
    job->reset();  // the stale object goes without writing
    EXPECT_EQ(test::sha256_of_file(overlay_path), before)
        << "dropping the job's stale object wrote to the overlay";

    auto reopened = Qcow2Image::open(overlay_path, Access::ReadWrite, Backing::Allow);
    ASSERT_TRUE(reopened) << reopened.error().message();
    expect_bytes(**reopened, 1, 4096, 0);
    expect_bytes(**reopened, 3, 512, 4096);
    expect_bytes(**reopened, 2, 65536, 1ull << 30);
    expect_bytes(**reopened, 4, 3 * 65536 + 100, (1ull << 31) - 4 * 65536);
    reopened->reset();
    const auto check = test::run("qemu-img check " + test::quote(overlay_path));
    EXPECT_EQ(check.exit_code, 0) << check.output;
    EXPECT_EQ(check.output.find("leak"), std::string::npos) << check.output;
}

}  // namespace
}  // namespace pv::img
