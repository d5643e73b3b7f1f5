// inspect_image agrees with `qemu-img info --output=json` on every number
// both report.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "imgfmt/image.hpp"
#include "qemu_tools.hpp"

namespace pv::img::interop {
namespace {

nlohmann::json qemu_info(const std::string& path) {
    return nlohmann::json::parse(must_run("qemu-img info -U --output=json " + quote(path)));
}

void expect_info_matches_qemu(const std::string& path) {
    SCOPED_TRACE(path);
    const nlohmann::json qemu = qemu_info(path);
    auto ours = inspect_image(path);
    ASSERT_TRUE(ours) << ours.error().message();
    EXPECT_EQ(format_name(ours->format), qemu.at("format").get<std::string>());
    EXPECT_EQ(ours->virtual_size, qemu.at("virtual-size").get<uint64_t>());
    EXPECT_EQ(ours->allocated_bytes, qemu.at("actual-size").get<uint64_t>());
    EXPECT_EQ(ours->encrypted, qemu.value("encrypted", false));
    if (ours->format == Format::Raw)
        EXPECT_EQ(ours->cluster_size, 0u);
    else
        EXPECT_EQ(ours->cluster_size, qemu.at("cluster-size").get<uint32_t>());
    if (ours->format == Format::Qcow2) {
        const std::string compat = qemu.at("format-specific").at("data").at("compat");
        EXPECT_EQ(ours->version, compat == "0.10" ? 2u : 3u);
    }
    if (qemu.contains("backing-filename")) {
        ASSERT_TRUE(ours->backing_file);
        EXPECT_EQ(*ours->backing_file, qemu.at("backing-filename").get<std::string>());
    } else {
        EXPECT_FALSE(ours->backing_file);
    }
    if (qemu.contains("backing-filename-format")) {
        ASSERT_TRUE(ours->backing_format);
        EXPECT_EQ(*ours->backing_format, qemu.at("backing-filename-format").get<std::string>());
    } else {
        EXPECT_FALSE(ours->backing_format);
    }
}

TEST(InfoInterop, MatchesQemuImgForEveryFormat) {
    TempDir dir;
    const std::string raw = dir.file("disk.raw");
    must_run("qemu-img create -f raw " + quote(raw) + " 5G");
    must_run("qemu-io -f raw -c 'write -P 0x5a 1M 64k' " + quote(raw));
    expect_info_matches_qemu(raw);
    for (const char* options :
         {"-O qcow2 -o compat=0.10", "-O qcow2 -o compat=1.1", "-O qcow2 -o cluster_size=2M",
          "-O qcow2 -o cluster_size=512", "-c -O qcow2", "-O qcow"}) {
        const std::string image = dir.file("converted");
        std::filesystem::remove(image);
        must_run("qemu-img convert -f raw " + std::string(options) + " " + quote(raw) + " " +
                 quote(image));
        expect_info_matches_qemu(image);
    }
}

TEST(InfoInterop, BackingFileAndFormatAsRecorded) {
    TempDir dir;
    const std::string base = dir.file("base.qcow2");
    must_run("qemu-img create -f qcow2 " + quote(base) + " 64M");
    const std::string top = dir.file("top.qcow2");
    must_run("qemu-img create -f qcow2 -b base.qcow2 -F qcow2 " + quote(top));
    expect_info_matches_qemu(top);
    const std::string absolute = dir.file("absolute.qcow2");
    must_run("qemu-img create -f qcow2 -b " + quote(base) + " -F qcow2 " + quote(absolute) +
             " 128M");
    expect_info_matches_qemu(absolute);
    const std::string old = dir.file("old.qcow");
    must_run("qemu-img create -f qcow -b " + quote(base) + " -F qcow2 " + quote(old));
    expect_info_matches_qemu(old);
}

}  // namespace
}  // namespace pv::img::interop
