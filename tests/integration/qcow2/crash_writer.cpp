// A writer that never stops, for crash tests: it is SIGKILLed at random
// moments and the overlay it leaves must pass qemu-img check (leaks at
// most, never corruption).
//
//   qcow2_crash_writer create OVERLAY BASE   new overlay over the raw BASE
//   qcow2_crash_writer write OVERLAY SEED    random writes until killed

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "imgfmt/qcow2/qcow2_image.hpp"
#include "imgfmt/raw/raw_image.hpp"

namespace {

using pv::Result;
using pv::img::Qcow2Image;

Result<void> create(const std::string& overlay, const std::string& base) {
    auto backing = PV_TRY(pv::img::RawImage::open(base, pv::img::Access::ReadOnly));
    auto image =
        PV_TRY(Qcow2Image::create_overlay(overlay, std::move(backing), base, pv::img::Format::Raw));
    return image->flush();
}

Result<void> write_forever(const std::string& overlay, uint64_t seed) {
    auto image =
        PV_TRY(Qcow2Image::open(overlay, pv::img::Access::ReadWrite, pv::img::Backing::Allow));
    std::mt19937_64 random(seed);
    const uint64_t cluster = image->cluster_size();
    // Up to 2 MiB: large aligned writes take the O_DIRECT write-behind path,
    // small unaligned ones the buffered path with copy-on-write.
    std::vector<std::byte> data(32 * cluster);
    std::printf("ready\n");
    std::fflush(stdout);
    for (uint64_t op = 0;; ++op) {
        const bool large = random() % 4 == 0;
        const uint64_t length =
            large ? cluster * (1 + random() % 32) : 1 + random() % (4 * cluster);
        uint64_t offset = random() % (image->size() - length);
        if (large)
            offset -= offset % cluster;
        for (auto& b : data)
            b = static_cast<std::byte>(op);
        if (random() % 8 == 0)
            PV_TRY(image->write_zeroes(offset, length));
        else
            PV_TRY(image->write_at(std::span(data).first(length), offset));
        if (random() % 16 == 0)
            PV_TRY(image->flush());
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s create OVERLAY BASE | write OVERLAY SEED\n", argv[0]);
        return 2;
    }
    const std::string mode = argv[1];
    Result<void> result;
    if (mode == "create")
        result = create(argv[2], argv[3]);
    else if (mode == "write")
        result = write_forever(argv[2], std::strtoull(argv[3], nullptr, 10));
    else
        return 2;
    if (!result) {
        std::fprintf(stderr, "qcow2_crash_writer: %s\n", result.error().message().c_str());
        return 1;
    }
    return 0;
}
