// Embeds patchvisor's microVM and image layer (find_package(patchvisor)):
// makes an 8 MiB raw disk, puts a qcow2 overlay over it and fills the
// overlay with 0x11 through the image API, boots the test guest with the
// overlay as its virtio-blk disk (the guest writes three patterns, reads
// them back and checks an untouched range still holds 0x11), reads the
// guest's first write back through the image API and commits the overlay
// into a new raw image. By default the VM runs on a thread of its own and
// this program's poll() loop waits for its exit_fd(); with --blocking it
// runs on the calling thread.
//
//   embed-vmm GUEST WORK_DIR [--blocking]
//
// WORK_DIR must exist; base.raw, overlay.qcow2, merged.raw and serial.log
// are written there. Exit 0 when everything worked.

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <patchvisor/image.hpp>
#include <patchvisor/vmm.hpp>

namespace {

constexpr uint64_t kDiskBytes = 8 << 20;
constexpr std::byte kBasePattern{0x11};
constexpr std::byte kGuestPattern{0x5a};  // what the test guest writes at sector 0

int failed(const std::string& what, const patchvisor::Error& error) {
    std::fprintf(stderr, "embed-vmm: %s: %s\n", what.c_str(), error.message().c_str());
    return 1;
}

// A sparse raw file of zeroes: what an embedder's own disk would be.
bool make_raw_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    const bool sized = ::ftruncate(fd, kDiskBytes) == 0;
    return ::close(fd) == 0 && sized;
}

// Waits for the VM as an event loop would: poll() on its exit_fd, here
// with nothing else to watch but a one-second tick.
patchvisor::Result<patchvisor::RunSummary> run_in_event_loop(patchvisor::MicroVm& vm) {
    if (auto started = vm.start(); !started)
        return tl::unexpected(started.error());
    std::printf("vm started on its own thread; polling exit_fd %d\n", vm.exit_fd());
    int ticks = 0;
    for (;;) {
        pollfd watched{vm.exit_fd(), POLLIN, 0};
        const int ready = ::poll(&watched, 1, 1000);
        if (ready > 0)
            break;
        if (ready == 0 && ++ticks == 120)
            vm.stop("the example gave up after 120 s");
    }
    return vm.wait();
}

void print_serial(const std::string& path) {
    std::ifstream serial(path);
    for (std::string line; std::getline(serial, line);)
        if (line.rfind("ok virtio-blk", 0) == 0 || line.rfind("testguest:", 0) == 0 ||
            line.rfind("FAIL", 0) == 0)
            std::printf("guest: %s\n", line.c_str());
}

int run(const std::string& guest, const std::string& work, bool blocking) {
    const std::string base_path = work + "/base.raw";
    const std::string overlay_path = work + "/overlay.qcow2";
    const std::string merged_path = work + "/merged.raw";
    const std::string serial_path = work + "/serial.log";
    if (!make_raw_file(base_path)) {
        std::perror(("embed-vmm: create " + base_path).c_str());
        return 1;
    }

    // The image layer: the base read-only (and locked), an overlay over it.
    auto base = patchvisor::Image::open(base_path, {.format = patchvisor::ImageFormat::Raw});
    if (!base)
        return failed("open the base", base.error());
    auto overlay = patchvisor::Image::create_overlay(overlay_path, std::move(*base));
    if (!overlay)
        return failed("create the overlay", overlay.error());
    const std::vector<std::byte> chunk(1 << 20, kBasePattern);
    for (uint64_t offset = 0; offset < kDiskBytes; offset += chunk.size())
        if (auto written = overlay->write(offset, chunk); !written)
            return failed("fill the overlay", written.error());
    std::printf("overlay %s over %s: %llu bytes, filled with 0x11\n", overlay_path.c_str(),
                base_path.c_str(), static_cast<unsigned long long>(overlay->size()));

    // The microVM, with the open overlay as its disk.
    patchvisor::VmConfig config(guest);
    config.cmdline("testguest.blk=rw testguest.blk.base=0x11")
        .memory_mib(64)
        .serial_log(serial_path)
        .timeout(std::chrono::seconds(120))
        .disk(std::move(*overlay));
    auto vm = patchvisor::MicroVm::create(std::move(config));
    if (!vm)
        return failed("create the microVM", vm.error());
    auto summary = blocking ? vm->run() : run_in_event_loop(*vm);
    if (!summary)
        return failed("run the microVM", summary.error());
    print_serial(serial_path);
    std::printf("vm ended: %s (%s) after %.1f ms, %llu port and %llu MMIO exits\n",
                std::string(patchvisor::to_string(summary->reason)).c_str(),
                summary->detail.c_str(), summary->wall_time.count() / 1000.0,
                static_cast<unsigned long long>(summary->exits.io),
                static_cast<unsigned long long>(summary->exits.mmio));
    if (!patchvisor::is_clean_exit(summary->reason))
        return 1;

    // The overlay back: the guest's first write must read back here.
    auto disk = vm->take_disk();
    if (!disk)
        return failed("take the disk back", disk.error());
    std::vector<std::byte> sector(4096);
    if (auto read = disk->read(0, sector); !read)
        return failed("read sector 0", read.error());
    const bool landed = std::all_of(sector.begin(), sector.end(),
                                    [](std::byte value) { return value == kGuestPattern; });
    std::printf("sector 0 after the run: %s\n", landed ? "0x5a (the guest's write)" : "WRONG");
    if (!landed)
        return 1;

    auto committed =
        std::move(*disk).commit({.output = merged_path, .format = patchvisor::ImageFormat::Raw});
    if (!committed)
        return failed("commit the overlay", committed.error());
    std::printf(
        "committed into %s (%s, %llu bytes copied); %s is unchanged\n", committed->target.c_str(),
        std::string(patchvisor::format_name(committed->format)).c_str(),
        static_cast<unsigned long long>(committed->bytes_copied), committed->original.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4 || (argc == 4 && std::string(argv[3]) != "--blocking")) {
        std::fprintf(stderr, "usage: embed-vmm GUEST WORK_DIR [--blocking]\n");
        return 2;
    }
    return run(argv[1], argv[2], argc == 4);
}
