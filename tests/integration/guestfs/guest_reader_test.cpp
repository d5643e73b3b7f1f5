// The host's reader of a guest's package database, on images made by tools
// we did not write (mke2fs -d, qemu-img, sgdisk, sfdisk, debugfs) and on the
// sample images, read through imgfmt exactly as the job reads its overlay,
// and checked against tests/support/image-packages (debugfs + dpkg-query).
// Every broken image is an error naming the image and the problem.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "guestfs/confined_read.hpp"
#include "imgfmt/image.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

using guestfs::InstalledPackage;

const std::string kOld = "3.0.20-1~deb12u2";
const std::string kNew = "3.0.22-1~deb12u2";

std::string status_with(const std::string& libssl3_version) {
    return "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nVersion: " +
           libssl3_version +
           "\nDescription: Secure Sockets Layer toolkit\n shared libraries\n\n"
           "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: " +
           kOld + "\n";
}

void write_file(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
}

class GuestReader : public ::testing::Test {
  protected:
    // A guest tree in DIR/NAME: os-release, dpkg's status (unless empty)
    // and its empty journal directory.
    std::string guest_tree(const std::string& name, const std::string& status) {
        const auto root = m_dir.file(name);
        write_file(root + "/usr/lib/os-release", "ID=debian\nVERSION_ID=12\n");
        std::filesystem::create_directories(root + "/etc");
        std::filesystem::create_symlink("../usr/lib/os-release", root + "/etc/os-release");
        std::filesystem::create_directories(root + "/var/lib/dpkg/updates");
        if (!status.empty())
            write_file(root + "/var/lib/dpkg/status", status);
        return root;
    }

    // An ext4 filesystem image of ROOT (mke2fs -d).
    std::string ext4_of(const std::string& root, const std::string& file,
                        const std::string& size = "16M") {
        const auto image = m_dir.file(file);
        must("mke2fs -q -F -t ext4 -d " + quote(root) + " " + quote(image) + " " + size);
        return image;
    }

    // IMAGE read by the host the way the job reads its overlay.
    Result<guestfs::PackageDatabase> read(const std::string& image) {
        auto disk = img::open_image(image, Access::ReadOnly, img::Backing::Allow);
        if (!disk)
            return fail(disk.error());
        return guestfs::read_package_database_confined(**disk, guestfs::DatabaseKind::Dpkg,
                                                       std::chrono::seconds(60));
    }

    std::string error_of(const std::string& image) {
        const auto database = read(image);
        EXPECT_FALSE(database) << image << " read without an error";
        return database ? "" : database.error().message();
    }

    // The host's versions of libssl3 and openssl are the oracle's.
    void expect_as_dpkg_query_reads(const std::string& image) {
        const auto database = read(image);
        ASSERT_TRUE(database) << database.error().message();
        for (const std::string name : {"libssl3", "openssl"}) {
            const auto found =
                std::find_if(database->packages.begin(), database->packages.end(),
                             [&](const InstalledPackage& package) { return package.name == name; });
            ASSERT_NE(found, database->packages.end()) << name << " in " << image;
            EXPECT_EQ(found->version, installed_version(image, name)) << name << " in " << image;
            EXPECT_TRUE(found->installed) << found->status;
        }
    }

    TempDir m_dir;
};

TEST_F(GuestReader, ReadsARawWholeDiskFilesystem) {
    const auto image = ext4_of(guest_tree("root", status_with(kNew)), "disk.raw");
    const auto database = read(image);
    ASSERT_TRUE(database) << database.error().message();
    EXPECT_EQ(database->packages, (std::vector<InstalledPackage>{
                                      {"libssl3", "amd64", kNew, "install ok installed", true},
                                      {"openssl", "amd64", kOld, "install ok installed", true}}));
    EXPECT_EQ(database->location,
              "/var/lib/dpkg/status on the whole disk (ext2/3/4 at byte 0) of " + image);
    expect_as_dpkg_query_reads(image);
}

TEST_F(GuestReader, ReadsAQcow2ImageAndAnOverlayThroughItsBackingFile) {
    const auto base = ext4_of(guest_tree("old", status_with(kOld)), "base.raw");
    const auto changed = ext4_of(guest_tree("new", status_with(kNew)), "changed.raw");
    const auto qcow2 = m_dir.file("disk.qcow2");
    must("qemu-img convert -O qcow2 " + quote(changed) + " " + quote(qcow2));
    expect_as_dpkg_query_reads(qcow2);
    // Compressed clusters take imgfmt's other read path.
    const auto compressed = m_dir.file("compressed.qcow2");
    must("qemu-img convert -c -O qcow2 " + quote(changed) + " " + quote(compressed));
    expect_as_dpkg_query_reads(compressed);

    // An overlay that stores only some clusters and reads the rest from
    // its backing file: empty at first, then holding CHANGED's bytes.
    const auto overlay = m_dir.file("overlay.qcow2");
    must("qemu-img create -q -f qcow2 -b " + quote(base) + " -F raw " + quote(overlay));
    expect_as_dpkg_query_reads(overlay);
    EXPECT_EQ(installed_version(overlay, "libssl3"), kOld);
    must("qemu-img convert -n -O qcow2 " + quote(changed) + " " + quote(overlay));
    expect_as_dpkg_query_reads(overlay);
    EXPECT_EQ(installed_version(overlay, "libssl3"), kNew);
}

TEST_F(GuestReader, ReadsTheRootPartitionOfGptAndMbrDisks) {
    const auto filesystem = ext4_of(guest_tree("root", status_with(kNew)), "root.raw");
    for (const std::string table : {"gpt", "mbr"}) {
        const auto disk = m_dir.file(table + ".raw");
        must("truncate -s 20M " + quote(disk));
        must(table == "gpt" ? "sgdisk -o -n 1:2048:+16M -t 1:8300 " + quote(disk) + " >/dev/null"
                            : "echo 'start=2048, size=32768, type=83' | sfdisk -q " + quote(disk));
        must("dd status=none conv=notrunc bs=1M seek=1 if=" + quote(filesystem) +
             " of=" + quote(disk));
        expect_as_dpkg_query_reads(disk);
        const auto database = read(disk);
        ASSERT_TRUE(database);
        EXPECT_EQ(database->location,
                  "/var/lib/dpkg/status on partition 1 (ext2/3/4 at byte 1048576) of " + disk);
    }
}

// As pv-agent chooses: the first filesystem with an os-release, not the
// first ext4 one.
TEST_F(GuestReader, ChoosesTheFirstFilesystemHoldingOsRelease) {
    const auto boot_root = m_dir.file("boot");
    write_file(boot_root + "/var/lib/dpkg/status", status_with("9.9.9-decoy"));
    const auto boot = ext4_of(boot_root, "boot.raw", "8M");
    const auto root = ext4_of(guest_tree("root", status_with(kNew)), "root.raw");
    const auto disk = m_dir.file("disk.raw");
    must("truncate -s 30M " + quote(disk));
    must("sgdisk -o -n 1:2048:+8M -n 2:0:+16M " + quote(disk) + " >/dev/null");
    const auto table =
        run("sgdisk -i 2 " + quote(disk) + " | sed -n 's/^First sector: \\([0-9]*\\).*/\\1/p'");
    const auto second = std::stoull(table.output);
    must("dd status=none conv=notrunc bs=1M seek=1 if=" + quote(boot) + " of=" + quote(disk));
    must("dd status=none conv=notrunc bs=512 seek=" + std::to_string(second) +
         " if=" + quote(root) + " of=" + quote(disk));
    const auto database = read(disk);
    ASSERT_TRUE(database) << database.error().message();
    EXPECT_EQ(database->packages.at(0).version, kNew);
    EXPECT_NE(database->location.find("partition 2"), std::string::npos) << database->location;
}

TEST_F(GuestReader, RefusesAFilesystemItCannotReadBeforeTheRoot) {
    const auto root = ext4_of(guest_tree("root", status_with(kNew)), "root.raw");
    const auto disk = m_dir.file("disk.raw");
    must("truncate -s 30M " + quote(disk));
    must("sgdisk -o -n 1:2048:+8M -n 2:0:+16M " + quote(disk) + " >/dev/null");
    must("printf XFSB | dd status=none conv=notrunc bs=1M seek=1 of=" + quote(disk));
    EXPECT_EQ(error_of(disk), "find the guest's root filesystem on " + disk +
                                  ": partition 1 holds xfs, which the host cannot read to verify "
                                  "the result (only ext2/3/4)");
    (void)root;
}

TEST_F(GuestReader, ATruncatedImageIsAnError) {
    const auto image = ext4_of(guest_tree("root", status_with(kNew)), "disk.raw");
    must("truncate -s 6M " + quote(image));
    EXPECT_EQ(error_of(image),
              "read the ext2/3/4 filesystem on the whole disk (ext2/3/4 at byte 0) of " + image +
                  ": it claims 16384 blocks of 1024 bytes, but only 6291456 bytes are there (a "
                  "truncated image?)");
}

TEST_F(GuestReader, ACorruptSuperblockIsAnError) {
    const auto image = ext4_of(guest_tree("root", status_with(kNew)), "disk.raw");
    // The volume name, covered by the superblock's checksum.
    must("printf X | dd status=none conv=notrunc bs=1 seek=1144 of=" + quote(image));
    EXPECT_EQ(error_of(image),
              "open the ext2/3/4 filesystem on the whole disk (ext2/3/4 at byte 0) of " + image +
                  ": Superblock checksum does not match superblock");
    // A block size of 2^(10+40) bytes.
    must("printf '\\050' | dd status=none conv=notrunc bs=1 seek=1048 of=" + quote(image));
    const auto error = error_of(image);
    EXPECT_NE(error.find("open the ext2/3/4 filesystem on the whole disk"), std::string::npos)
        << error;
    EXPECT_NE(error.find(image), std::string::npos) << error;
}

TEST_F(GuestReader, AMissingStatusFileIsAnError) {
    const auto image = ext4_of(guest_tree("root", ""), "disk.raw");
    EXPECT_EQ(error_of(image),
              "read /var/lib/dpkg/status on the whole disk (ext2/3/4 at byte 0) of " + image +
                  ": no such file");
}

TEST_F(GuestReader, SymlinksResolveInsideTheGuestNeverOnTheHost) {
    // /etc/debian_version exists on this Debian host, not in the guest.
    ASSERT_TRUE(std::filesystem::exists("/etc/debian_version"));
    const auto root = guest_tree("root", "");
    std::filesystem::create_symlink("/etc/debian_version", root + "/var/lib/dpkg/status");
    EXPECT_NE(error_of(ext4_of(root, "escape.raw")).find("/var/lib/dpkg/status on the whole disk"),
              std::string::npos);

    const auto inside = guest_tree("inside", "");
    write_file(inside + "/srv/status", status_with(kNew));
    std::filesystem::create_symlink("/srv/status", inside + "/var/lib/dpkg/status");
    const auto database = read(ext4_of(inside, "inside.raw"));
    ASSERT_TRUE(database) << database.error().message();
    EXPECT_EQ(database->packages.at(0).version, kNew);
}

TEST_F(GuestReader, AStatusThatIsNotARegularFileIsAnError) {
    const auto root = guest_tree("root", "");
    std::filesystem::create_directories(root + "/var/lib/dpkg/status");
    const auto image = ext4_of(root, "disk.raw");
    EXPECT_EQ(error_of(image),
              "read /var/lib/dpkg/status on the whole disk (ext2/3/4 at byte 0) of " + image +
                  ": not a regular file");
}

TEST_F(GuestReader, AnUnappliedJournalRecordIsAnError) {
    const auto root = guest_tree("root", status_with(kNew));
    write_file(root + "/var/lib/dpkg/updates/0003", status_with(kOld));
    const auto error = error_of(ext4_of(root, "disk.raw"));
    EXPECT_NE(error.find("dpkg's journal holds a record it has not applied "
                         "(/var/lib/dpkg/updates/0003)"),
              std::string::npos)
        << error;
}

TEST_F(GuestReader, AMalformedStatusFileIsAnErrorNamingTheParagraph) {
    const auto image =
        ext4_of(guest_tree("root", status_with(kNew) + "\nPackage: x\nVersion: 1\nVersion: 2\n"
                                                       "Status: install ok installed\n"),
                "disk.raw");
    const auto error = error_of(image);
    EXPECT_NE(error.find("read /var/lib/dpkg/status on the whole disk (ext2/3/4 at byte 0) of " +
                         image + ": the paragraph at byte "),
              std::string::npos)
        << error;
    EXPECT_NE(error.find("the field Version appears twice"), std::string::npos) << error;
}

// What the kernel would change on mount, the host cannot have read.
TEST_F(GuestReader, AFilesystemNeedingRecoveryOrRecordingErrorsIsAnError) {
    const auto recovering = ext4_of(guest_tree("a", status_with(kNew)), "recovering.raw");
    must("debugfs -w -R 'feature needs_recovery' " + quote(recovering) + " >/dev/null 2>&1");
    EXPECT_NE(error_of(recovering).find("its journal needs recovery"), std::string::npos);
    const auto broken = ext4_of(guest_tree("b", status_with(kNew)), "broken.raw");
    must("debugfs -w -R 'ssv state 2' " + quote(broken) + " >/dev/null 2>&1");
    EXPECT_NE(error_of(broken).find("it records errors that e2fsck has not repaired"),
              std::string::npos);
}

TEST_F(GuestReader, AFilesystemWithoutOsReleaseIsNotTheRoot) {
    const auto root = m_dir.file("bare");
    write_file(root + "/var/lib/dpkg/status", status_with(kNew));
    const auto image = ext4_of(root, "disk.raw");
    EXPECT_EQ(error_of(image), "find the guest's root filesystem on " + image +
                                   ": the whole disk (ext2/3/4): no /etc/os-release");
}

TEST_F(GuestReader, ReadsTheSampleImagesAsDpkgQueryDoes) {
    for (const std::string sample : {"sample-raw", "sample-qcow2", "sample-gpt"}) {
        const auto image = image_artifact(sample);
        ASSERT_FALSE(image.empty());
        expect_as_dpkg_query_reads(image);
        const auto database = read(image);
        ASSERT_TRUE(database);
        EXPECT_GT(database->packages.size(), 50u) << "a debootstrap minbase has more packages";
    }
}

}  // namespace
}  // namespace pv::test
