// virtio-blk under Linux's virtio_blk driver: the guest reads its whole
// disk (sha256sum /dev/vda in busybox) and the digest must equal the host's
// of the same virtual bytes (sha256sum of the raw file, or of `qemu-img
// convert -O raw` of a qcow2 overlay); the guest writes, and qemu-io,
// qemu-img compare and qemu-img check say where the bytes landed.

#include <gtest/gtest.h>

#include "devices_support.hpp"

namespace pv::vmm::test {
namespace {

using pv::test::quote;

constexpr int kMemoryMib = 256;
constexpr int kTimeoutS = 300;

// The guest prints its disk's size and digest.
constexpr const char* kReadWholeDisk =
    "echo \"DISK-SIZE $(blockdev --getsize64 /dev/vda)\"\n"
    "echo \"DISK-SHA256 $(sha256sum /dev/vda)\"\n";

std::string file_sha256(const std::string& path) {
    return first_word_of("sha256sum " + quote(path));
}

void random_file(const std::string& path, const std::string& size) {
    pv::test::must("head -c " + size + " /dev/urandom > " + quote(path));
}

VmmRun run_with_disk(const Guest& guest, const std::string& disk, int vcpus = 1) {
    auto arguments = guest_arguments(guest, kMemoryMib, kTimeoutS);
    arguments.insert(arguments.end(), {"--disk", disk, "--vcpus", std::to_string(vcpus)});
    return run_vmm(arguments);
}

TEST(LinuxVirtioBlk, GuestReadsRawDiskWithHostDigest) {
    pv::test::TempDir dir;
    const auto disk = dir.file("disk.raw");
    random_file(disk, "32M");
    const auto guest = make_guest(dir, "raw-read", kReadWholeDisk);
    ASSERT_FALSE(guest.kernel.empty() || guest.initramfs.empty());

    const auto run = run_with_disk(guest, disk);
    expect_clean_end(run);
    EXPECT_EQ(console_word(run, "DISK-SIZE"), std::to_string(32 << 20)) << transcript(run);
    EXPECT_EQ(console_word(run, "DISK-SHA256"), file_sha256(disk)) << transcript(run);
    std::printf("port I/O exits: %s\n", run.summary["exits"]["io"].dump().c_str());
}

// Two vCPUs: the guest brings both online and reads its disk once pinned to
// each (the page cache dropped between), so requests are queued from the
// second vCPU too; both digests equal the host's.
TEST(LinuxVirtioBlk, TwoVcpusEachReadTheDiskWithHostDigest) {
    pv::test::TempDir dir;
    const auto disk = dir.file("disk.raw");
    random_file(disk, "16M");
    const auto guest = make_guest(dir, "two-vcpus",
                                  "echo \"CPUS-ONLINE $(cat /sys/devices/system/cpu/online)\"\n"
                                  "echo \"CPU0-SHA256 $(taskset 0x1 sha256sum /dev/vda)\"\n"
                                  "echo 3 > /proc/sys/vm/drop_caches\n"
                                  "echo \"CPU1-SHA256 $(taskset 0x2 sha256sum /dev/vda)\"\n");
    ASSERT_FALSE(guest.kernel.empty() || guest.initramfs.empty());

    const auto run = run_with_disk(guest, disk, 2);
    expect_clean_end(run);
    EXPECT_EQ(console_word(run, "CPUS-ONLINE"), "0-1") << transcript(run);
    const auto host = file_sha256(disk);
    EXPECT_EQ(console_word(run, "CPU0-SHA256"), host) << transcript(run);
    EXPECT_EQ(console_word(run, "CPU1-SHA256"), host) << transcript(run);
}

// A qcow2 overlay made by qemu-img over a raw base, some clusters written
// by qemu-io (whole clusters, a partial one, zeroed ones, the last one):
// the guest reads both layers through the VMM's qcow2 code.
TEST(LinuxVirtioBlk, GuestReadsQcow2OverlayWithHostDigest) {
    pv::test::TempDir dir;
    const auto base = dir.file("base.raw");
    const auto overlay = dir.file("overlay.qcow2");
    random_file(base, "40M");
    pv::test::must("qemu-img create -q -f qcow2 -F raw -b " + quote(base) + " " + quote(overlay));
    pv::test::must(
        "qemu-io -f qcow2 -c 'write -P 0xa7 1M 192k' -c 'write -P 0x3c 5000 3000' "
        "-c 'write -z 20M 128k' -c 'write -P 0x5e 41877504 65536' " +
        quote(overlay) + " >/dev/null");
    const auto flat = dir.file("flat.raw");
    pv::test::must("qemu-img convert -f qcow2 -O raw " + quote(overlay) + " " + quote(flat));
    const auto expected = file_sha256(flat);
    ASSERT_NE(expected, file_sha256(base)) << "qemu-io changed nothing";
    const auto guest = make_guest(dir, "qcow2-read", kReadWholeDisk);
    ASSERT_FALSE(guest.kernel.empty() || guest.initramfs.empty());

    const auto run = run_with_disk(guest, overlay);
    expect_clean_end(run);
    EXPECT_EQ(console_word(run, "DISK-SIZE"), std::to_string(40 << 20)) << transcript(run);
    EXPECT_EQ(console_word(run, "DISK-SHA256"), expected) << transcript(run);
}

// What the write test does to the disk, none of it cluster-aligned at
// either end, so each range's first and last overlay clusters mix the
// guest's bytes with the base's: 300 KiB of 0xa5 written with dd, 200 KiB
// zeroed (WRITE_ZEROES), 260 KiB punched (WRITE_ZEROES with the unmap flag),
// 300 KiB discarded (DISCARD, after which any content is allowed).
struct Range {
    uint64_t offset;
    uint64_t length;
    [[nodiscard]] uint64_t blocks_in() const { return offset / 4096; }
    [[nodiscard]] uint64_t blocks() const { return length / 4096; }
};
constexpr Range kWritten{(5u << 20) + 12 * 1024, 300 * 1024};
constexpr Range kZeroed{(9u << 20) + 8 * 1024, 200 * 1024};
constexpr Range kPunched{(13u << 20) + 4 * 1024, 260 * 1024};
constexpr Range kDiscarded{(17u << 20) + 4 * 1024, 300 * 1024};

std::string pattern_script() {
    return "head -c " + std::to_string(kWritten.length) +
           " /dev/zero | tr '\\000' '\\245' > /tmp/p\n";
}

std::string dd_write(const std::string& extra) {
    return "dd if=/tmp/p of=/dev/vda bs=4096 seek=" + std::to_string(kWritten.blocks_in()) +
           " conv=notrunc,fsync " + extra + " 2>&1\n";
}

// The guest's digest of RANGE read past its page cache, as "MARKER <digest>".
std::string guest_range_digest(const std::string& marker, const Range& range) {
    return "echo \"" + marker +
           " $(dd if=/dev/vda bs=4096 skip=" + std::to_string(range.blocks_in()) +
           " count=" + std::to_string(range.blocks()) + " iflag=direct | sha256sum)\"\n";
}

std::string host_range_digest(const std::string& file, const Range& range) {
    return first_word_of("dd if=" + quote(file) +
                         " bs=4096 skip=" + std::to_string(range.blocks_in()) +
                         " count=" + std::to_string(range.blocks()) + " status=none | sha256sum");
}

// Copies RANGE of FROM into TO (both raw), in place.
void copy_range(const std::string& from, const std::string& to, const Range& range) {
    pv::test::must("dd if=" + quote(from) + " of=" + quote(to) +
                   " bs=4096 skip=" + std::to_string(range.blocks_in()) +
                   " seek=" + std::to_string(range.blocks_in()) +
                   " count=" + std::to_string(range.blocks()) + " conv=notrunc status=none");
}

std::string write_script() {
    const auto numbers = [](const Range& range) {
        return std::to_string(range.offset) + " " + std::to_string(range.length);
    };
    return pattern_script() + dd_write("") + "echo \"DD-EXIT $?\"\n" +
           "pv-blk-zero zero /dev/vda " + numbers(kZeroed) + "; echo \"ZERO-EXIT $?\"\n" +
           "pv-blk-zero punch /dev/vda " + numbers(kPunched) + "; echo \"PUNCH-EXIT $?\"\n" +
           "blkdiscard -o " + std::to_string(kDiscarded.offset) + " -l " +
           std::to_string(kDiscarded.length) + " /dev/vda; echo \"DISCARD-EXIT $?\"\n" + "sync\n" +
           guest_range_digest("WRITTEN-SHA256", kWritten) +
           guest_range_digest("ZEROED-SHA256", kZeroed) +
           guest_range_digest("PUNCHED-SHA256", kPunched) +
           guest_range_digest("DISCARDED-SHA256", kDiscarded);
}

// Two vCPUs: requests complete on whichever CPU the guest's driver runs.
TEST(LinuxVirtioBlk, GuestWritesLandInTheOverlayOnly) {
    pv::test::TempDir dir;
    const auto base = dir.file("base.raw");
    const auto overlay = dir.file("overlay.qcow2");
    random_file(base, "32M");
    const auto base_digest = file_sha256(base);
    pv::test::must(quote(pv::test::built_binary("patcher/cli/patchvisor")) + " img overlay " +
                   quote(base) + " " + quote(overlay));
    const auto guest = make_guest(dir, "write", write_script());
    ASSERT_FALSE(guest.kernel.empty() || guest.initramfs.empty());

    const auto run = run_with_disk(guest, overlay, 2);
    expect_clean_end(run);
    for (const char* marker : {"DD-EXIT", "ZERO-EXIT", "PUNCH-EXIT", "DISCARD-EXIT"})
        EXPECT_EQ(console_word(run, marker), "0") << marker << "\n" << transcript(run);

    EXPECT_EQ(file_sha256(base), base_digest) << "the base was written";
    const auto check = pv::test::run("qemu-img check " + quote(overlay) + " 2>&1");
    EXPECT_EQ(check.exit_code, 0) << check.output;
    const auto read =
        pv::test::run("qemu-io -r -f qcow2 -c 'read -P 0xa5 " + std::to_string(kWritten.offset) +
                      " " + std::to_string(kWritten.length) + "' -c 'read -P 0 " +
                      std::to_string(kZeroed.offset) + " " + std::to_string(kZeroed.length) +
                      "' -c 'read -P 0 " + std::to_string(kPunched.offset) + " " +
                      std::to_string(kPunched.length) + "' " + quote(overlay) + " 2>&1");
    EXPECT_EQ(read.exit_code, 0) << read.output;
    EXPECT_EQ(read.output.find("Pattern verification failed"), std::string::npos) << read.output;

    // Everything else still reads as the base: the base with the same
    // changes made on the host (and the discarded range as the overlay now
    // has it) is the overlay's whole virtual disk.
    const auto expected = dir.file("expected.raw");
    const auto flat = dir.file("flat.raw");
    const auto pattern = dir.file("pattern");
    pv::test::must("head -c " + std::to_string(kWritten.length) +
                   " /dev/zero | tr '\\000' '\\245' > " + quote(pattern));
    pv::test::must("cp " + quote(base) + " " + quote(expected) + " && dd if=" + quote(pattern) +
                   " of=" + quote(expected) + " bs=4096 seek=" +
                   std::to_string(kWritten.blocks_in()) + " conv=notrunc status=none");
    for (const Range& range : {kZeroed, kPunched})
        pv::test::must("dd if=/dev/zero of=" + quote(expected) +
                       " bs=4096 seek=" + std::to_string(range.blocks_in()) +
                       " count=" + std::to_string(range.blocks()) + " conv=notrunc status=none");
    pv::test::must("qemu-img convert -f qcow2 -O raw " + quote(overlay) + " " + quote(flat));
    copy_range(flat, expected, kDiscarded);
    const auto compare = pv::test::run("qemu-img compare -f raw -F raw " + quote(expected) + " " +
                                       quote(flat) + " 2>&1");
    EXPECT_EQ(compare.exit_code, 0) << compare.output;
    // And the guest read what the host reads, range by range.
    EXPECT_EQ(console_word(run, "WRITTEN-SHA256"), file_sha256(pattern)) << transcript(run);
    EXPECT_EQ(console_word(run, "ZEROED-SHA256"), host_range_digest(flat, kZeroed));
    EXPECT_EQ(console_word(run, "PUNCHED-SHA256"), host_range_digest(flat, kPunched));
    EXPECT_EQ(console_word(run, "DISCARDED-SHA256"), host_range_digest(flat, kDiscarded));
}

// The device offers VIRTIO_BLK_F_RO, so the guest's kernel marks the disk
// read-only and refuses the write itself (Linux 6.1 fails write(2) with
// EPERM and a shared writable mapping with EINVAL, so no guest program can
// make it send a write request; the device's own IOERR answer is tested by
// the freestanding test guest, tests/integration/virtio_blk). The file must
// stay unchanged, and the guest reading past its page cache sees it so.
TEST(LinuxVirtioBlk, ReadOnlyDiskRefusesWrites) {
    pv::test::TempDir dir;
    const auto disk = dir.file("disk.raw");
    random_file(disk, "16M");
    const auto digest = file_sha256(disk);
    const auto script = pattern_script() + "echo \"RO-FLAG $(cat /sys/block/vda/ro)\"\n" +
                        dd_write("oflag=direct") + "echo \"DD-EXIT $?\"\n" + dd_write("") +
                        "echo \"BUFFERED-DD-EXIT $?\"\nsync\n" +
                        "echo \"DIRECT-SHA256 $(dd if=/dev/vda bs=1M iflag=direct | sha256sum)\"\n";
    const auto guest = make_guest(dir, "readonly", script);
    ASSERT_FALSE(guest.kernel.empty() || guest.initramfs.empty());

    const auto run = run_with_disk(guest, disk + ",readonly");
    expect_clean_end(run);
    EXPECT_EQ(console_word(run, "RO-FLAG"), "1") << transcript(run);
    for (const char* marker : {"DD-EXIT", "BUFFERED-DD-EXIT"}) {
        const auto status = console_word(run, marker);
        EXPECT_TRUE(!status.empty() && status != "0") << marker << "\n" << transcript(run);
    }
    EXPECT_EQ(file_sha256(disk), digest) << "the read-only disk was written";
    EXPECT_EQ(console_word(run, "DIRECT-SHA256"), digest) << transcript(run);
}

}  // namespace
}  // namespace pv::vmm::test
