// Commit checked against QEMU's own tools: overlays made by `qemu-img
// create -b` and written with `qemu-io` are committed by our code, and
// `qemu-img compare` must find the result equal to `qemu-img convert` of the
// same overlay; `qemu-img check` must accept every qcow2 we write.

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "imgfmt/commit.hpp"
#include "tests/support/support.hpp"

namespace pv::img {
namespace {

using test::must;
using test::quote;
using test::run;

struct BaseKind {
    const char* name;
    const char* format;        // as qemu-img names it
    const char* convert_args;  // how the base is made from a raw file
};

const BaseKind kBases[] = {
    {"raw", "raw", ""},
    {"qcow2", "qcow2", "-O qcow2"},
    {"compressed_qcow2", "qcow2", "-O qcow2 -c"},
};

void PrintTo(const BaseKind& kind, std::ostream* out) {
    *out << kind.name;
}

class CommitInterop : public ::testing::TestWithParam<BaseKind> {
  protected:
    // A 64 MiB base with data scattered over it and holes between, and an
    // overlay written by qemu-io with full clusters, partial clusters,
    // zero writes over data and writes past the data.
    void SetUp() override {
        const auto& kind = GetParam();
        m_base = m_dir.file(std::string("base.") + kind.name);
        must("qemu-img create -q -f raw " + quote(m_dir.file("seed.raw")) + " 64M");
        must(
            "qemu-io -f raw -c 'write -P 0x11 0 1M' -c 'write -P 0x22 8M 3M' "
            "-c 'write -P 0x33 40M 65k' " +
            quote(m_dir.file("seed.raw")) + " >/dev/null");
        if (std::string(kind.name) == "raw")
            must("cp --sparse=always " + quote(m_dir.file("seed.raw")) + " " + quote(m_base));
        else
            must(std::string("qemu-img convert -f raw ") + kind.convert_args + " " +
                 quote(m_dir.file("seed.raw")) + " " + quote(m_base));
        m_overlay = m_dir.file("overlay.qcow2");
        must(std::string("qemu-img create -q -f qcow2 -b ") + quote(m_base) + " -F " + kind.format +
             " " + quote(m_overlay));
        must(
            "qemu-io -f qcow2 -c 'write -P 0xab 512k 1M' -c 'write -P 0xcd 9M 100k' "
            "-c 'write -z 10M 64k' -c 'write -P 0xef 63M 4k' -c 'write -P 0x01 20M 512' " +
            quote(m_overlay) + " >/dev/null");
        m_expected = m_dir.file("expected.raw");
        must("qemu-img convert -O raw " + quote(m_overlay) + " " + quote(m_expected));
        m_base_sha = test::sha256_of_file(m_base);
    }

    test::TempDir m_dir;
    std::string m_base, m_overlay, m_expected, m_base_sha;
};

TEST_P(CommitInterop, ToRawEqualsQemuConvert) {
    CommitOptions options;
    options.format = Format::Raw;
    options.output = m_dir.file("out.raw");
    const auto result = commit_overlay(m_overlay, options);
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_EQ(result->target, *options.output);
    must("qemu-img compare -f raw -F raw " + quote(m_expected) + " " + quote(*options.output));
    EXPECT_EQ(test::sha256_of_file(m_base), m_base_sha) << "the original must not change";
}

TEST_P(CommitInterop, ToQcow2EqualsQemuConvertAndChecksClean) {
    CommitOptions options;
    options.format = Format::Qcow2;
    options.output = m_dir.file("out.qcow2");
    const auto result = commit_overlay(m_overlay, options);
    ASSERT_TRUE(result) << result.error().message();
    must("qemu-img check -q " + quote(*options.output));
    must("qemu-img compare -F qcow2 " + quote(m_expected) + " " + quote(*options.output));
    const auto info = run("qemu-img info " + quote(*options.output));
    EXPECT_EQ(info.output.find("backing file"), std::string::npos) << "must be standalone";
    EXPECT_EQ(test::sha256_of_file(m_base), m_base_sha);
}

TEST_P(CommitInterop, ReplaceKeepsBackupOfTheOriginal) {
    CommitOptions options;
    options.keep_backup = true;
    const auto result = commit_overlay(m_overlay, options);
    ASSERT_TRUE(result) << result.error().message();
    ASSERT_TRUE(result->backup.has_value());
    EXPECT_EQ(test::sha256_of_file(*result->backup), m_base_sha);
    const std::string format = GetParam().name == std::string("raw") ? "raw" : "qcow2";
    EXPECT_EQ(result->format, format == "raw" ? Format::Raw : Format::Qcow2)
        << "the default target format follows the original";
    must("qemu-img compare -F " + format + " " + quote(m_expected) + " " + quote(m_base));
    if (format == "qcow2")
        must("qemu-img check -q " + quote(m_base));
}

INSTANTIATE_TEST_SUITE_P(Bases, CommitInterop, ::testing::ValuesIn(kBases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Commit, RawTargetKeepsHolesAsHoles) {
    test::TempDir dir;
    const auto base = dir.file("base.raw");
    const auto overlay = dir.file("overlay.qcow2");
    must("qemu-img create -q -f raw " + quote(base) + " 1G");
    must("qemu-io -f raw -c 'write -P 0x5a 100M 1M' " + quote(base) + " >/dev/null");
    must("qemu-img create -q -f qcow2 -b " + quote(base) + " -F raw " + quote(overlay));
    must("qemu-io -f qcow2 -c 'write -P 0x6b 500M 2M' " + quote(overlay) + " >/dev/null");
    CommitOptions options;
    options.output = dir.file("out.raw");
    const auto result = commit_overlay(overlay, options);
    ASSERT_TRUE(result) << result.error().message();
    struct stat status {};
    ASSERT_EQ(::stat(options.output->c_str(), &status), 0);
    EXPECT_EQ(status.st_size, 1 << 30);
    EXPECT_LE(status.st_blocks * 512, 8 << 20) << "1 GiB disk with 3 MiB of data must stay sparse";
    // qemu-img create allocates the first block of a raw image, so the base
    // holds a few KiB of (zero) data at offset 0 besides the 1 MiB written.
    EXPECT_GE(result->bytes_copied, 3u << 20);
    EXPECT_LE(result->bytes_copied, (3u << 20) + (64u << 10));
    must("qemu-img compare " + quote(overlay) + " " + quote(*options.output));
}

TEST(Commit, RefusesAnExistingOutputAndLeavesEverythingAlone) {
    test::TempDir dir;
    const auto base = dir.file("base.raw");
    const auto overlay = dir.file("overlay.qcow2");
    must("qemu-img create -q -f raw " + quote(base) + " 8M");
    must("qemu-img create -q -f qcow2 -b " + quote(base) + " -F raw " + quote(overlay));
    must("echo keep > " + quote(dir.file("out.raw")));
    CommitOptions options;
    options.output = dir.file("out.raw");
    const auto result = commit_overlay(overlay, options);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("exists"), std::string::npos)
        << result.error().message();
    EXPECT_EQ(run("cat " + quote(dir.file("out.raw"))).output, "keep\n");
}

TEST(Commit, RefusesAnOverlayWithoutBackingFile) {
    test::TempDir dir;
    const auto image = dir.file("plain.qcow2");
    must("qemu-img create -q -f qcow2 " + quote(image) + " 8M");
    CommitOptions options;
    options.output = dir.file("out.raw");
    const auto result = commit_overlay(image, options);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("no backing file"), std::string::npos)
        << result.error().message();
}

}  // namespace
}  // namespace pv::img
