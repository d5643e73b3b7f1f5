// `patchvisor img` as a user runs it: exit codes, messages that name the
// file and the problem, and results checked with qemu-img.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/support.hpp"

namespace pv {
namespace {

using test::must;
using test::quote;
using test::run;

class ImgCli : public ::testing::Test {
  protected:
    test::CommandOutput patchvisor(const std::string& arguments) {
        return run(quote(test::built_binary("patcher/cli/patchvisor")) + " " + arguments);
    }
    test::TempDir m_dir;
};

TEST_F(ImgCli, InfoJsonAgreesWithQemuImg) {
    const auto base = m_dir.file("base.raw");
    const auto overlay = m_dir.file("overlay.qcow2");
    must("qemu-img create -q -f raw " + quote(base) + " 100M");
    must("qemu-img create -q -f qcow2 -b " + quote(base) + " -F raw " + quote(overlay));
    const auto ours = patchvisor("img info --json " + quote(overlay));
    ASSERT_EQ(ours.exit_code, 0) << ours.output;
    const auto theirs = run("qemu-img info --output=json " + quote(overlay));
    ASSERT_EQ(theirs.exit_code, 0) << theirs.output;
    const auto our_json = nlohmann::json::parse(ours.output);
    const auto their_json = nlohmann::json::parse(theirs.output);
    EXPECT_EQ(our_json["format"], "qcow2");
    EXPECT_EQ(our_json["virtual_size"], their_json["virtual-size"]);
    EXPECT_EQ(our_json["cluster_size"], their_json["cluster-size"]);
    EXPECT_EQ(our_json["backing_file"], their_json["backing-filename"]);
    EXPECT_EQ(our_json["backing_format"], their_json["backing-filename-format"]);
}

TEST_F(ImgCli, OverlayWriteCommitCompareRoundTrip) {
    const auto base = m_dir.file("base.raw");
    const auto overlay = m_dir.file("overlay.qcow2");
    const auto output = m_dir.file("out.raw");
    must("qemu-img create -q -f raw " + quote(base) + " 16M");
    must("qemu-io -f raw -c 'write -P 0x10 0 16M' " + quote(base) + " >/dev/null");
    const auto before = test::sha256_of_file(base);
    must(quote(test::built_binary("patcher/cli/patchvisor")) + " img overlay " + quote(base) + " " +
         quote(overlay));
    must("qemu-img check -q " + quote(overlay));
    const auto write =
        patchvisor("img write " + quote(overlay) + " --offset 1000000 --length 70K --pattern 0xab");
    ASSERT_EQ(write.exit_code, 0) << write.output;
    must("qemu-img check -q " + quote(overlay));

    const auto differ =
        patchvisor("img compare --allow-backing " + quote(base) + " " + quote(overlay));
    EXPECT_EQ(differ.exit_code, 1) << differ.output;
    EXPECT_NE(differ.output.find("differ at offset 1000000"), std::string::npos) << differ.output;

    const auto commit = patchvisor("img commit " + quote(overlay) + " --output " + quote(output));
    ASSERT_EQ(commit.exit_code, 0) << commit.output;
    must("qemu-img compare " + quote(overlay) + " " + quote(output));
    must("qemu-io -f raw -c 'read -P 0xab 1000000 70K' -c 'read -P 0x10 0 1000000' " +
         quote(output) + " | grep -q 'read 71680/71680'");
    const auto same =
        patchvisor("img compare --allow-backing " + quote(overlay) + " " + quote(output));
    EXPECT_EQ(same.exit_code, 0) << same.output;
    EXPECT_EQ(test::sha256_of_file(base), before) << "commit --output never writes the original";
}

TEST_F(ImgCli, UsageErrorsExitTwo) {
    EXPECT_EQ(patchvisor("").exit_code, 2);
    EXPECT_EQ(patchvisor("img frobnicate").exit_code, 2);
    EXPECT_EQ(patchvisor("img commit x.qcow2").exit_code, 2) << "needs --output or --replace";
    EXPECT_EQ(patchvisor("img commit x.qcow2 --output a --replace").exit_code, 2);
    const auto bad = patchvisor("img write x.qcow2 --offset 12Q --length 1 --pattern 1");
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.output.find("12Q"), std::string::npos) << bad.output;
    EXPECT_EQ(patchvisor("img write x.qcow2 --offset 0 --length 1 --pattern 256").exit_code, 2);
    const auto help = patchvisor("img commit --help");
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.output.find("--keep-backup"), std::string::npos);
}

// Every bad file gives exit 1 and a message that names the file.
TEST_F(ImgCli, BadFilesNameTheFileAndExitOne) {
    const auto missing = m_dir.file("missing.qcow2");
    const auto truncated = m_dir.file("truncated.qcow2");
    const auto garbage = m_dir.file("garbage.qcow2");
    must("qemu-img create -q -f qcow2 " + quote(m_dir.file("good.qcow2")) + " 1G");
    must("head -c 40 " + quote(m_dir.file("good.qcow2")) + " > " + quote(truncated));
    must("printf 'QFI\\373\\000\\000\\000\\003' > " + quote(garbage) +
         " && head -c 200 /dev/urandom >> " + quote(garbage));
    for (const auto& path : {missing, truncated, garbage}) {
        for (const std::string command : {"img info ", "img commit --output /tmp/x.raw ",
                                          "img write --offset 0 --length 1 --pattern 1 "}) {
            const auto result = patchvisor(command + quote(path));
            EXPECT_EQ(result.exit_code, 1) << command << path << "\n" << result.output;
            EXPECT_NE(result.output.find(path), std::string::npos) << command << path << "\n"
                                                                   << result.output;
        }
    }
}

}  // namespace
}  // namespace pv
