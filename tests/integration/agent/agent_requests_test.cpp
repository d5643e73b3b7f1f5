// pv-agent in a jail over a tiny ext4 image made here with mke2fs -d, so
// these tests need no sample image: bad requests get Errors and leave the
// agent serving, and the root is found on a GPT partition or not at all.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "jailed_agent.hpp"
#include "support.hpp"

namespace pv::test {
namespace {

constexpr const char* kStatus =
    "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4\n"
    "Description: x\n multi-line\n\n"
    "Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n"
    "Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:2.3-4\n";

class AgentRequests : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string reason = jail_unavailable_reason();
        if (!reason.empty())
            GTEST_SKIP() << "jail unavailable: " << reason;
        const auto tree = std::filesystem::path(m_dir.file("tree"));
        std::filesystem::create_directories(tree / "etc");
        std::filesystem::create_directories(tree / "var/lib/dpkg");
        std::filesystem::create_directories(tree / "usr/sbin");
        std::ofstream(tree / "etc/os-release") << "ID=debian\nVERSION_CODENAME=\"bookworm\"\n";
        std::ofstream(tree / "var/lib/dpkg/status") << kStatus;
    }

    // An ext4 image of the tree: on the whole disk (label ""), or as
    // partition 2 of a "gpt" or "dos" table whose partition 1 is an empty
    // ext4 (a /boot without os-release, which the agent must pass over).
    void make_image(const std::string& label, bool with_os_release = true) {
        if (!with_os_release)
            std::filesystem::remove(m_dir.file("tree/etc/os-release"));
        const std::string image = quote(m_dir.file("disk.raw"));
        const std::string tree = quote(m_dir.file("tree"));
        if (label.empty()) {
            ASSERT_EQ(run("mke2fs -q -F -t ext4 -d " + tree + " " + image + " 16M").exit_code, 0);
            return;
        }
        const auto made = run("truncate -s 28M " + image +
                              " && printf 'start=2048, size=8192, type=L\\n"
                              "start=10240, size=32768, type=L\\n' | sfdisk -q --label " +
                              label + " " + image + " && mke2fs -q -F -t ext4 -E offset=1048576 " +
                              image + " 4M" + " && mke2fs -q -F -t ext4 -E offset=5242880 -d " +
                              tree + " " + image + " 16M");
        ASSERT_EQ(made.exit_code, 0) << made.output;
    }

    // The tree as the only filesystem of a disk, made by `type`'s own mkfs.
    void make_filesystem_image(const std::string& type) {
        const std::string image = quote(m_dir.file("disk.raw"));
        const std::string tree = quote(m_dir.file("tree"));
        if (type == "btrfs") {
            ASSERT_EQ(run("truncate -s 256M " + image + " && mkfs.btrfs -q --rootdir " + tree +
                          " " + image)
                          .exit_code,
                      0);
        } else {
            // mkfs.xfs cannot copy a tree in; mount the new filesystem and copy.
            // The mount lives in a private mount namespace: a namespace cloned
            // from the host's meanwhile (a parallel test) would otherwise keep a
            // copy of it alive, and XFS refuses a second mount of the same UUID.
            const std::string mnt = quote(m_dir.file("mnt"));
            const std::string copy = "mount -o loop " + image + " " + mnt + " && cp -a " + tree +
                                     "/. " + mnt + " && umount " + mnt;
            const auto made =
                run("truncate -s 320M " + image + " && mkfs.xfs -q " + image + " && mkdir " + mnt +
                    " && unshare -m --propagation private sh -c " + quote(copy));
            ASSERT_EQ(made.exit_code, 0) << made.output;
        }
    }

    TempDir m_dir;
};

wire::Envelope chunk_request(uint64_t id, const std::string& name, uint64_t offset,
                             const std::string& data, uint64_t total, const std::string& sha) {
    wire::Envelope envelope;
    envelope.set_request_id(id);
    auto* chunk = envelope.mutable_stage_chunk();
    chunk->set_name(name);
    chunk->set_offset(offset);
    chunk->set_data(data);
    chunk->set_total_size(total);
    chunk->set_sha256(sha);
    return envelope;
}

struct BadRequest {
    wire::Envelope request;
    wire::Error::Code expected;
};

// Requests the session would never send, each with the Error it must get.
std::vector<BadRequest> bad_requests() {
    const std::string zero_sha(32, '\0');
    std::vector<BadRequest> cases;
    cases.push_back(
        {chunk_request(1, "../escape.deb", 0, "x", 1, zero_sha), wire::Error::CODE_BAD_REQUEST});
    cases.push_back({chunk_request(2, "a.deb", 0, "abc", 3, zero_sha), wire::Error::CODE_CHECKSUM});
    cases.push_back(
        {chunk_request(3, "b.deb", 5, "abc", 10, zero_sha), wire::Error::CODE_BAD_REQUEST});
    cases.push_back(
        {chunk_request(4, "c.deb", 0, "abc", 1ull << 40, zero_sha), wire::Error::CODE_LIMIT});
    wire::Envelope run_request;
    run_request.set_request_id(5);
    for (const char* arg : {"sh", "-c", "rm -rf /"})
        run_request.mutable_run()->add_argv(arg);
    cases.push_back({run_request, wire::Error::CODE_BAD_REQUEST});
    wire::Envelope apply_request;
    apply_request.set_request_id(6);
    apply_request.mutable_apply()->set_action(wire::Apply::ACTION_INSTALL);
    apply_request.mutable_apply()->add_files("never-staged.deb");
    cases.push_back({apply_request, wire::Error::CODE_BAD_REQUEST});
    wire::Envelope old_host;
    old_host.set_request_id(7);
    old_host.mutable_hello()->set_major(proto::kProtocolMajor + 1);
    cases.push_back({old_host, wire::Error::CODE_UNSUPPORTED});
    wire::Envelope not_a_request;
    not_a_request.set_request_id(8);
    not_a_request.mutable_result();
    cases.push_back({not_a_request, wire::Error::CODE_UNSUPPORTED});

    return cases;
}

TEST_F(AgentRequests, BadRequestsGetErrorsAndTheAgentKeepsServing) {
    make_image("");
    auto agent = JailedAgent::start(m_dir.file("disk.raw"), m_dir.path());
    ASSERT_TRUE(agent) << agent.error().message();
    RawClient client(agent->take_connection());

    for (const auto& test_case : bad_requests()) {
        ASSERT_TRUE(client.send(test_case.request));
        auto reply = client.receive_terminal();
        ASSERT_TRUE(reply) << reply.error().message() << agent->log();
        EXPECT_EQ(reply->request_id(), test_case.request.request_id());
        ASSERT_TRUE(reply->has_error()) << proto::body_name(*reply);
        EXPECT_EQ(reply->error().code(), test_case.expected) << reply->error().message();
    }
    // A frame of garbage is answered too, and the stream stays in step.
    ASSERT_TRUE(client.send_bytes(std::string("\0\0\0\3\xff\xff\xff", 7)));
    auto garbage = client.receive_terminal();
    ASSERT_TRUE(garbage && garbage->has_error());

    wire::Envelope inspect;
    inspect.set_request_id(9);
    inspect.mutable_inspect();
    ASSERT_TRUE(client.send(inspect));
    auto inventory = client.receive_terminal();
    ASSERT_TRUE(inventory && inventory->has_inspect_result());
    ASSERT_EQ(inventory->inspect_result().packages_size(), 2);
    EXPECT_EQ(inventory->inspect_result().packages(1).version(), "1:2.3-4");
    EXPECT_EQ(inventory->inspect_result().os_release().at("VERSION_CODENAME"), "bookworm");

    // An oversize frame header ends the conversation with the agent exiting.
    ASSERT_TRUE(client.send_bytes(std::string("\x7f\0\0\0", 4)));
    EXPECT_FALSE(client.receive_terminal());
    EXPECT_EQ(agent->wait_and_detach(), 1) << agent->log();
    EXPECT_NE(agent->log().find("over the limit"), std::string::npos) << agent->log();
}

// The root is the partition holding os-release, reached through a loop
// device at its offset (loop devices here have no partition scanning).
class AgentPartitions : public AgentRequests, public ::testing::WithParamInterface<std::string> {};

TEST_P(AgentPartitions, FindsRootInSecondPartition) {
    make_image(GetParam());
    auto agent = JailedAgent::start(m_dir.file("disk.raw"), m_dir.path());
    ASSERT_TRUE(agent) << agent.error().message();
    auto session = patcher::Session::from_fd(agent->take_connection());
    ASSERT_TRUE(session);
    auto inventory = session->inspect();
    ASSERT_TRUE(inventory) << inventory.error().message() << agent->log();
    EXPECT_NE(inventory->root_device().find("offset 5242880"), std::string::npos)
        << inventory->root_device();
    EXPECT_EQ(inventory->packages_size(), 2);
    ASSERT_TRUE(session->finish());
    EXPECT_EQ(agent->wait_and_detach(), 0) << agent->log();
}

INSTANTIATE_TEST_SUITE_P(Labels, AgentPartitions, ::testing::Values("gpt", "dos"));

TEST_F(AgentRequests, DiskWithoutOsReleaseIsAnErrorNotAHang) {
    make_image("", false);
    auto agent = JailedAgent::start(m_dir.file("disk.raw"), m_dir.path());
    ASSERT_TRUE(agent) << agent.error().message();
    auto session = patcher::Session::from_fd(agent->take_connection());
    ASSERT_TRUE(session);
    auto inventory = session->inspect();
    ASSERT_FALSE(inventory);
    EXPECT_FALSE(session->broken());
    EXPECT_NE(inventory.error().message().find("no /etc/os-release"), std::string::npos)
        << inventory.error().message();
    ASSERT_TRUE(session->finish());
    EXPECT_EQ(agent->wait_and_detach(), 0) << agent->log();
}

// The root is found on each supported filesystem, made by its own mkfs.
class AgentFilesystems : public AgentRequests, public ::testing::WithParamInterface<std::string> {};

TEST_P(AgentFilesystems, InspectsRootOnFilesystem) {
    const std::string type = GetParam();
    if (!have_program("mkfs." + type))
        GTEST_SKIP() << "mkfs." << type << " is not installed";
    make_filesystem_image(type);
    auto agent = JailedAgent::start(m_dir.file("disk.raw"), m_dir.path());
    ASSERT_TRUE(agent) << agent.error().message();
    auto session = patcher::Session::from_fd(agent->take_connection());
    ASSERT_TRUE(session);
    auto inventory = session->inspect();
    ASSERT_TRUE(inventory) << inventory.error().message() << agent->log();
    EXPECT_EQ(inventory->filesystem(), type);
    EXPECT_EQ(inventory->packages_size(), 2);
    ASSERT_TRUE(session->finish());
    EXPECT_EQ(agent->wait_and_detach(), 0) << agent->log();
}

// Batch jobs patch copies of one image side by side; copies share their
// filesystem UUID, which XFS refuses to mount twice unless told (nouuid).
TEST_P(AgentFilesystems, TwoCopiesOfOneImageMountSideBySide) {
    const std::string type = GetParam();
    if (!have_program("mkfs." + type))
        GTEST_SKIP() << "mkfs." << type << " is not installed";
    make_filesystem_image(type);
    ASSERT_EQ(run("cp --sparse=always " + quote(m_dir.file("disk.raw")) + " " +
                  quote(m_dir.file("copy.raw")))
                  .exit_code,
              0);
    // Mark the copy, so a second mount that silently shared the first's
    // filesystem (same UUID) would show up as the wrong ID.
    const std::string mnt = quote(m_dir.file("mark"));
    const std::string mark = "mount -o loop " + quote(m_dir.file("copy.raw")) + " " + mnt +
                             " && echo ID=copy > " + mnt + "/etc/os-release && umount " + mnt;
    const auto marked =
        run("mkdir " + mnt + " && unshare -m --propagation private sh -c " + quote(mark));
    ASSERT_EQ(marked.exit_code, 0) << marked.output;
    TempDir second_dir;
    auto first = JailedAgent::start(m_dir.file("disk.raw"), m_dir.path());
    auto second = JailedAgent::start(m_dir.file("copy.raw"), second_dir.path());
    ASSERT_TRUE(first && second);
    auto first_session = patcher::Session::from_fd(first->take_connection());
    auto second_session = patcher::Session::from_fd(second->take_connection());
    ASSERT_TRUE(first_session && second_session);
    auto first_inventory = first_session->inspect();
    ASSERT_TRUE(first_inventory) << first_inventory.error().message();
    auto second_inventory = second_session->inspect();
    ASSERT_TRUE(second_inventory) << second_inventory.error().message();
    EXPECT_EQ(first_inventory->os_release().at("ID"), "debian");
    EXPECT_EQ(second_inventory->os_release().at("ID"), "copy");
    ASSERT_TRUE(first_session->finish());
    ASSERT_TRUE(second_session->finish());
}

INSTANTIATE_TEST_SUITE_P(Filesystems, AgentFilesystems, ::testing::Values("xfs", "btrfs"));

}  // namespace
}  // namespace pv::test
