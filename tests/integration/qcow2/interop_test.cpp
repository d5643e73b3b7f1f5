// Our overlays and standalone images judged by QEMU: after a random write
// workload qemu-img check finds no errors and no leaks, qemu-img compare
// finds the same disk as an in-test byte model, and qemu-img info shows
// the backing file and format.

#include <chrono>
#include <cstdio>

#include "imgfmt/qcow2/qcow2_image.hpp"
#include "imgfmt/raw/raw_image.hpp"
#include "support.hpp"

namespace pv::img {
namespace {

using test::quote;
using test::run;

struct Workload {
    uint32_t cluster_bits;
    uint64_t seed;
};

class Qcow2Workload : public ::testing::TestWithParam<Workload> {};

// Random writes of varied sizes at unaligned offsets, some write_zeroes
// and flushes, mirrored into MODEL.
void run_workload(BlockDevice& image, std::vector<std::byte>& model, uint64_t seed) {
    std::mt19937_64 random(seed);
    for (int i = 0; i < 300; ++i) {
        const uint64_t max_length = (random() % 4 == 0) ? 400000 : 9000;
        const uint64_t length = 1 + random() % max_length;
        const uint64_t offset = random() % (model.size() - length);
        if (random() % 10 == 0) {
            ASSERT_TRUE(image.write_zeroes(offset, length).has_value());
            std::fill(model.begin() + offset, model.begin() + offset + length, std::byte{0});
        } else {
            const auto data = test::random_bytes(length, seed * 1000 + i);
            auto written = image.write_at(data, offset);
            ASSERT_TRUE(written.has_value()) << written.error().message();
            std::copy(data.begin(), data.end(), model.begin() + offset);
        }
        if (random() % 40 == 0) {
            ASSERT_TRUE(image.flush().has_value());
        }
    }
}

TEST_P(Qcow2Workload, CheckIsCleanAndCompareMatchesModel) {
    test::ScratchDir dir;
    const std::string base = dir.path("base.raw");
    const std::string overlay = dir.path("overlay.qcow2");
    // Not a multiple of the cluster size, so the last cluster is partial.
    std::vector<std::byte> model = test::random_bytes((6 << 20) + 4608, GetParam().seed);
    test::write_file(base, model);
    const std::string base_sum = test::sha256(base);
    {
        auto backing = RawImage::open(base, Access::ReadOnly);
        ASSERT_TRUE(backing.has_value()) << backing.error().message();
        auto image = Qcow2Image::create_overlay(overlay, std::move(*backing), base, Format::Raw,
                                                {GetParam().cluster_bits});
        ASSERT_TRUE(image.has_value()) << image.error().message();
        run_workload(**image, model, GetParam().seed);
        std::vector<std::byte> all(model.size());
        ASSERT_TRUE((*image)->read_at(all, 0).has_value());
        EXPECT_TRUE(all == model) << "reads differ from the model before close";
        ASSERT_TRUE((*image)->flush().has_value());
    }
    const auto check = test::qemu_check(overlay);
    EXPECT_EQ(check.exit_code, 0) << check.output;
    EXPECT_NE(check.output.find("No errors were found on the image."), std::string::npos)
        << check.output;
    EXPECT_EQ(check.output.find("leaked"), std::string::npos) << check.output;

    const std::string expected = dir.path("expected.raw");
    test::write_file(expected, model);
    const auto compare =
        run("qemu-img compare -f qcow2 -F raw " + quote(overlay) + " " + quote(expected));
    EXPECT_EQ(compare.exit_code, 0) << compare.output;
    EXPECT_EQ(test::sha256(base), base_sum) << "the backing file was modified";

    // Reopened through the header's backing file name, the disk is the same.
    auto reopened = Qcow2Image::open(overlay, Access::ReadWrite, Backing::Allow);
    ASSERT_TRUE(reopened.has_value()) << reopened.error().message();
    std::vector<std::byte> all(model.size());
    ASSERT_TRUE((*reopened)->read_at(all, 0).has_value());
    EXPECT_TRUE(all == model) << "reads differ from the model after reopening";
}

INSTANTIATE_TEST_SUITE_P(ClusterSizes, Qcow2Workload,
                         ::testing::Values(Workload{16, 1}, Workload{16, 2}, Workload{9, 3},
                                           Workload{12, 4}, Workload{21, 5}),
                         [](const auto& info) {
                             return "bits" + std::to_string(info.param.cluster_bits) + "_seed" +
                                    std::to_string(info.param.seed);
                         });

TEST(Qcow2Interop, InfoShowsBackingFileAndFormat) {
    test::ScratchDir dir;
    const std::string base = dir.path("base.raw");
    test::write_file(base, test::random_bytes(1 << 20, 7));
    {
        auto backing = RawImage::open(base, Access::ReadOnly);
        ASSERT_TRUE(backing.has_value()) << backing.error().message();
        auto image = Qcow2Image::create_overlay(dir.path("overlay.qcow2"), std::move(*backing),
                                                base, Format::Raw);
        ASSERT_TRUE(image.has_value()) << image.error().message();
    }
    const auto info = run("qemu-img info --output=json " + quote(dir.path("overlay.qcow2")));
    ASSERT_EQ(info.exit_code, 0) << info.output;
    EXPECT_NE(info.output.find("\"backing-filename\": \"" + base + "\""), std::string::npos)
        << info.output;
    EXPECT_NE(info.output.find("\"backing-filename-format\": \"raw\""), std::string::npos)
        << info.output;
    EXPECT_NE(info.output.find("\"cluster-size\": 65536"), std::string::npos) << info.output;
    EXPECT_NE(info.output.find("\"compat\": \"1.1\""), std::string::npos) << info.output;
    EXPECT_NE(info.output.find("\"virtual-size\": 1048576"), std::string::npos) << info.output;
}

// The commit path: a standalone image written in 1 MiB cluster-aligned
// chunks, all-zero chunks skipped. Prints the throughput.
TEST(Qcow2Interop, StandaloneWrittenInLargeChunks) {
    test::ScratchDir dir;
    const uint64_t size = 64 << 20;
    std::vector<std::byte> model = test::random_bytes(size, 8);
    for (uint64_t chunk = 0; chunk < size; chunk += 3 << 20)
        std::fill(model.begin() + chunk, model.begin() + chunk + (1 << 20), std::byte{0});
    const std::string target = dir.path("target.qcow2");
    const auto start = std::chrono::steady_clock::now();
    {
        auto image = Qcow2Image::create_standalone(target, size);
        ASSERT_TRUE(image.has_value()) << image.error().message();
        const std::vector<std::byte> zero(1 << 20);
        for (uint64_t offset = 0; offset < size; offset += 1 << 20) {
            const std::span<const std::byte> chunk(model.data() + offset, 1 << 20);
            if (std::equal(chunk.begin(), chunk.end(), zero.begin()))
                continue;
            ASSERT_TRUE((*image)->write_at(chunk, offset).has_value());
        }
        ASSERT_TRUE((*image)->flush().has_value());
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("standalone qcow2: %.0f MiB written in %.3f s (%.0f MiB/s, fdatasync included)\n",
                size / 1048576.0 * 2 / 3, seconds, size / 1048576.0 * 2 / 3 / seconds);
    const auto check = test::qemu_check(target);
    EXPECT_EQ(check.exit_code, 0) << check.output;
    const std::string expected = dir.path("expected.raw");
    test::write_file(expected, model);
    const auto compare =
        run("qemu-img compare -f qcow2 -F raw " + quote(target) + " " + quote(expected));
    EXPECT_EQ(compare.exit_code, 0) << compare.output;
    // Skipped chunks stay unallocated: the file holds about 2/3 of the data.
    const auto file_size = std::filesystem::file_size(target);
    EXPECT_LT(file_size, size * 3 / 4);
}

}  // namespace
}  // namespace pv::img
