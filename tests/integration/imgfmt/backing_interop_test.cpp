// Backing chains made by qemu-img: refused unless allowed, then read exactly
// as QEMU reads them; encrypted images refused with a clear message.

#include <gtest/gtest.h>

#include "imgfmt/image.hpp"
#include "qemu_tools.hpp"

namespace pv::img::interop {
namespace {

class BackingInterop : public ::testing::Test {
  protected:
    std::string create(const std::string& name, const std::string& options) {
        const std::string path = dir.file(name);
        must_run("qemu-img create " + options + " " + quote(path));
        return path;
    }
    void write(const std::string& path, const std::string& format, const std::string& commands) {
        must_run("qemu-io -f " + format + " " + commands + " " + quote(path));
    }
    void expect_same_as_qemu(const std::string& path) {
        const std::vector<std::byte> ours = our_view(path, true);
        const std::vector<std::byte> qemu = qemu_raw_view(path, dir.file("oracle.raw"));
        ASSERT_EQ(ours.size(), qemu.size());
        EXPECT_EQ(first_difference(ours, qemu), -1) << path;
    }
    TempDir dir;
};

TEST_F(BackingInterop, RefusedUnlessAllowed) {
    create("base.qcow2", "-f qcow2 -o size=16M");
    const std::string top = create("top.qcow2", "-f qcow2 -b base.qcow2 -F qcow2");
    auto image = open_image(top, Access::ReadOnly, Backing::Refuse);
    ASSERT_FALSE(image);
    EXPECT_EQ(image.error().message(),
              top + ": has a backing file (base.qcow2); pass --allow-backing to follow it");
}

TEST_F(BackingInterop, AllowedChainReadsLikeQemu) {
    const std::string base = create("base.qcow2", "-f qcow2 -o size=16M");
    write(base, "qcow2", "-c 'write -P 0x11 0 4M' -c 'write -P 0x22 8M 1M'");
    const std::string top = create("top.qcow2", "-f qcow2 -b base.qcow2 -F qcow2");
    // Overwrite part of the base's data, zero a cluster that the base holds
    // (must read as zeroes, not as the base's bytes) and write past it.
    write(top, "qcow2",
          "-c 'write -P 0x33 1M 64k' -c 'write -z 2M 128k' -c 'write -P 0x44 12M 7k'");
    expect_same_as_qemu(top);
}

TEST_F(BackingInterop, ThreeLevelsOfMixedVersionsAndALargerTop) {
    const std::string base = create("base.qcow", "-f qcow -o size=4M");
    write(base, "qcow", "-c 'write -P 0x61 0 4M'");
    const std::string middle =
        create("middle.qcow2", "-f qcow2 -o compat=0.10 -b base.qcow -F qcow");
    write(middle, "qcow2", "-c 'write -P 0x62 1M 1M'");
    // The top is larger than its backing chain: QEMU reads zeroes past the
    // end of a shorter backing file.
    const std::string top = create("top.qcow2", "-f qcow2 -b middle.qcow2 -F qcow2 -o size=12M");
    write(top, "qcow2", "-c 'write -P 0x63 1536k 64k' -c 'write -P 0x64 10M 64k'");
    expect_same_as_qemu(top);
}

TEST_F(BackingInterop, QcowVersion1WithABackingFileIsRefusedNotMisread) {
    // libqcow 20201213 misreads these (see image_open.cpp): a clear error.
    create("base.qcow2", "-f qcow2 -o size=4M");
    const std::string top = create("top.qcow", "-f qcow -b base.qcow2 -F qcow2");
    auto image = open_image(top, Access::ReadOnly, Backing::Allow);
    ASSERT_FALSE(image);
    EXPECT_EQ(image.error().message(),
              top + ": qcow version 1 images with a backing file are not supported");
}

TEST_F(BackingInterop, AbsoluteBackingNameInAnotherDirectory) {
    const std::string base = create("base.qcow2", "-f qcow2 -o size=8M");
    write(base, "qcow2", "-c 'write -P 0x71 0 1M'");
    std::filesystem::create_directory(dir.file("elsewhere"));
    const std::string top = create("elsewhere/top.qcow2", "-f qcow2 -F qcow2 -b " + quote(base));
    write(top, "qcow2", "-c 'write -P 0x72 512k 64k'");
    expect_same_as_qemu(top);
}

TEST_F(BackingInterop, RawBackingFileIsReadAsRecorded) {
    // The common overlay shape: a qcow2 over a raw disk. The raw base starts
    // with qcow2 magic bytes of its own; the recorded backing format (raw)
    // must win over probing (CVE-2010-3851).
    const std::string base = create("base.raw", "-f raw -o size=8M");
    write(base, "raw", "-c 'write -P 0x51 0 1M' -c 'write -P 0x52 5M 64k'");
    must_run("printf 'QFI\\373\\0\\0\\0\\3' | dd of=" + quote(base) + " conv=notrunc status=none");
    const std::string top = create("top.qcow2", "-f qcow2 -b base.raw -F raw");
    write(top, "qcow2", "-c 'write -P 0x53 64k 64k' -c 'write -z 5M 4k'");
    expect_same_as_qemu(top);
}

TEST_F(BackingInterop, EncryptedImagesAreRefused) {
    const std::string secret = "--object secret,id=s0,data=abc ";
    const std::vector<std::pair<std::string, std::string>> variants = {
        {"luks.qcow2", "-f qcow2 " + secret +
                           "-o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10"},
        {"aes.qcow2", "-f qcow2 " + secret + "-o encrypt.format=aes,encrypt.key-secret=s0"},
        {"aes.qcow", "-f qcow " + secret + "-o encrypt.format=aes,encrypt.key-secret=s0"},
    };
    for (const auto& [name, options] : variants) {
        const std::string path = create(name, options + " -o size=16M");
        EXPECT_TRUE(inspect_image(path).value().encrypted) << name;
        auto image = open_image(path, Access::ReadOnly, Backing::Allow);
        ASSERT_FALSE(image) << name;
        EXPECT_EQ(image.error().message(), path + ": encrypted qcow images are not supported");
    }
}

}  // namespace
}  // namespace pv::img::interop
