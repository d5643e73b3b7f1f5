// Overlays made and written by QEMU (qemu-img create -b, qemu-io), read,
// mapped and written by us; qemu-img convert of the same file is the
// oracle for what the disk holds.

#include "imgfmt/qcow2/qcow2_image.hpp"
#include "support.hpp"

namespace pv::img {
namespace {

using test::quote;
using test::run;

class QemuMadeOverlay : public ::testing::Test {
  protected:
    // A raw base of BASE_SIZE random bytes and a qemu-img overlay of
    // VIRTUAL_SIZE over it, written by qemu-io with COMMANDS.
    void make(const std::string& create_options, uint64_t base_size,
              const std::string& virtual_size, const std::vector<std::string>& commands) {
        test::write_file(base(), test::random_bytes(base_size, 21));
        const auto created =
            run("qemu-img create -q -f qcow2 " + create_options + " -b " + quote(base()) +
                " -F raw " + quote(overlay()) + " " + virtual_size);
        ASSERT_EQ(created.exit_code, 0) << created.output;
        std::string io = "qemu-io -f qcow2";
        for (const auto& command : commands)
            io += " -c " + quote(command);
        const auto written = run(io + " " + quote(overlay()));
        ASSERT_EQ(written.exit_code, 0) << written.output;
    }

    // The overlay's disk as QEMU reads it.
    std::vector<std::byte> converted() {
        const std::string out = m_dir.path("converted.raw");
        std::filesystem::remove(out);
        const auto result =
            run("qemu-img convert -f qcow2 -O raw " + quote(overlay()) + " " + quote(out));
        EXPECT_EQ(result.exit_code, 0) << result.output;
        return test::read_file(out);
    }

    std::vector<std::byte> read_ours(Access access = Access::ReadOnly) {
        auto image = Qcow2Image::open(overlay(), access, Backing::Allow);
        EXPECT_TRUE(image.has_value()) << image.error().message();
        if (!image)
            return {};
        std::vector<std::byte> all((*image)->size());
        auto read = (*image)->read_at(all, 0);
        EXPECT_TRUE(read.has_value()) << read.error().message();
        return all;
    }

    std::string base() const { return m_dir.path("base.raw"); }
    std::string overlay() const { return m_dir.path("overlay.qcow2"); }

    test::ScratchDir m_dir;
};

const std::vector<std::string> kQemuWrites = {
    "write -P 0xab 0 64k",   "write -z 1M 128k", "write -P 0xcd 300k 5k",
    "write -P 0x11 2M 192k", "write -z 2M 64k",  "write -P 0x22 3000k 100k",
    "discard 2112k 64k",
};

TEST_F(QemuMadeOverlay, ReadsEqualQemuConvert) {
    make("", 4 << 20, "4M", kQemuWrites);
    const auto ours = read_ours();
    const auto theirs = converted();
    ASSERT_EQ(ours.size(), theirs.size());
    EXPECT_TRUE(ours == theirs);
}

TEST_F(QemuMadeOverlay, MapShowsDataZeroAndBacking) {
    make("", 4 << 20, "4M", kQemuWrites);
    auto image = Qcow2Image::open(overlay(), Access::ReadOnly, Backing::Allow);
    ASSERT_TRUE(image.has_value()) << image.error().message();
    EXPECT_EQ((*image)->backing_file(), std::optional<std::string>(base()));
    auto extents = (*image)->map(0, 4 << 20);
    ASSERT_TRUE(extents.has_value()) << extents.error().message();
    auto kind_at = [&](uint64_t offset) {
        for (const Extent& e : *extents)
            if (offset >= e.offset && offset < e.offset + e.length)
                return e.kind;
        ADD_FAILURE() << "no extent covers " << offset;
        return ExtentKind::Data;
    };
    EXPECT_EQ(kind_at(0), ExtentKind::Data);
    EXPECT_EQ(kind_at(64 << 10), ExtentKind::Backing);
    EXPECT_EQ(kind_at(1 << 20), ExtentKind::Zero);
    EXPECT_EQ(kind_at((1 << 20) + (127 << 10)), ExtentKind::Zero);
    EXPECT_EQ(kind_at(2 << 20), ExtentKind::Zero);  // preallocated zero cluster
    // Discarded over a backing file: QEMU makes it a zero cluster.
    EXPECT_EQ(kind_at((2 << 20) + (64 << 10)), ExtentKind::Zero);
    EXPECT_EQ(kind_at((2 << 20) + (128 << 10)), ExtentKind::Data);
    EXPECT_EQ(kind_at((3 << 20) + (100 << 10)), ExtentKind::Backing);
    for (size_t i = 1; i < extents->size(); ++i) {
        EXPECT_NE((*extents)[i].kind, (*extents)[i - 1].kind) << "extents not merged";
        EXPECT_EQ((*extents)[i].offset, (*extents)[i - 1].offset + (*extents)[i - 1].length);
    }
}

TEST_F(QemuMadeOverlay, WritesByUsKeepTheFileClean) {
    make("", 4 << 20, "4M", kQemuWrites);
    std::vector<std::byte> model = converted();
    {
        auto image = Qcow2Image::open(overlay(), Access::ReadWrite, Backing::Allow);
        ASSERT_TRUE(image.has_value()) << image.error().message();
        // Into a qemu data cluster, a zero cluster, a preallocated zero
        // cluster, a discarded one and unallocated ones, at odd offsets.
        for (uint64_t offset : {100ull, (1ull << 20) + 7, (2ull << 20) + 1000, 2163712ull + 3,
                                (3ull << 20) + 12345, 4000000ull}) {
            const auto data = test::random_bytes(70000 + offset % 1000, offset);
            const uint64_t length = std::min<uint64_t>(data.size(), model.size() - offset);
            ASSERT_TRUE((*image)->write_at(std::span(data).first(length), offset).has_value());
            std::copy(data.begin(), data.begin() + length, model.begin() + offset);
        }
        ASSERT_TRUE((*image)->flush().has_value());
    }
    const auto check = test::qemu_check(overlay());
    EXPECT_EQ(check.exit_code, 0) << check.output;
    EXPECT_EQ(converted(), model);
    EXPECT_EQ(read_ours(), model);
}

TEST_F(QemuMadeOverlay, LongerThanItsBackingReadsZeroesPastIt) {
    make("", (1 << 20) + 4096, "3M", {"write -P 0x33 2M 4k", "write -P 0x44 1020k 8k"});
    const auto ours = read_ours();
    const auto theirs = converted();
    ASSERT_EQ(ours.size(), 3u << 20);
    EXPECT_TRUE(ours == theirs);
    EXPECT_EQ(ours[(1 << 20) + 8192], std::byte{0});
}

TEST_F(QemuMadeOverlay, Version2IsReadableAndWritable) {
    make("-o compat=0.10", 2 << 20, "2M", {"write -P 0x55 0 100k", "write -P 0x66 1500k 3k"});
    auto model = converted();
    EXPECT_EQ(read_ours(), model);
    {
        auto image = Qcow2Image::open(overlay(), Access::ReadWrite, Backing::Allow);
        ASSERT_TRUE(image.has_value()) << image.error().message();
        const auto data = test::random_bytes(200000, 5);
        ASSERT_TRUE((*image)->write_at(data, 50000).has_value());
        std::copy(data.begin(), data.end(), model.begin() + 50000);
        // Version 2 has no zero flag; zeroes are written as data.
        ASSERT_TRUE((*image)->write_zeroes(1 << 20, 128 << 10).has_value());
        std::fill(model.begin() + (1 << 20), model.begin() + (1 << 20) + (128 << 10), std::byte{0});
    }
    const auto check = test::qemu_check(overlay());
    EXPECT_EQ(check.exit_code, 0) << check.output;
    EXPECT_EQ(converted(), model);
}

TEST(Qcow2Unsupported, CompressedClustersGiveACleanError) {
    test::ScratchDir dir;
    const std::string raw = dir.path("disk.raw");
    const std::string compressed = dir.path("compressed.qcow2");
    std::vector<std::byte> bytes(1 << 20, std::byte{0x41});
    test::write_file(raw, bytes);
    const auto converted =
        run("qemu-img convert -c -f raw -O qcow2 " + quote(raw) + " " + quote(compressed));
    ASSERT_EQ(converted.exit_code, 0) << converted.output;
    auto image = Qcow2Image::open(compressed, Access::ReadWrite, Backing::Refuse);
    ASSERT_TRUE(image.has_value()) << image.error().message();
    std::vector<std::byte> buffer(4096);
    auto read = (*image)->read_at(buffer, 0);
    ASSERT_FALSE(read.has_value());
    EXPECT_NE(read.error().message().find("compressed clusters are not supported"),
              std::string::npos);
    auto written = (*image)->write_at(buffer, 0);
    ASSERT_FALSE(written.has_value());
    EXPECT_NE(written.error().message().find("not supported"), std::string::npos);
}

TEST(Qcow2Unsupported, ExternalDataAndExtendedL2AreRefused) {
    test::ScratchDir dir;
    const std::string extended = dir.path("extended.qcow2");
    auto created = run("qemu-img create -q -f qcow2 -o extended_l2=on " + quote(extended) + " 1M");
    ASSERT_EQ(created.exit_code, 0) << created.output;
    auto image = Qcow2Image::open(extended, Access::ReadOnly, Backing::Refuse);
    ASSERT_FALSE(image.has_value());
    EXPECT_NE(image.error().message().find("extended L2 entries are not supported"),
              std::string::npos);

    const std::string external = dir.path("external.qcow2");
    created = run("qemu-img create -q -f qcow2 -o data_file=" + quote(dir.path("data.raw")) + " " +
                  quote(external) + " 1M");
    ASSERT_EQ(created.exit_code, 0) << created.output;
    image = Qcow2Image::open(external, Access::ReadWrite, Backing::Refuse);
    ASSERT_FALSE(image.has_value());
    EXPECT_NE(image.error().message().find("external data files are not supported"),
              std::string::npos);
}

}  // namespace
}  // namespace pv::img
