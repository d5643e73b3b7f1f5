// A writer that never stops, for crash tests: it is SIGKILLed at random
// moments and the overlay it leaves must pass qemu-img check (leaks at
// most, never corruption).
//
//   qcow2_crash_writer create OVERLAY BASE   new overlay over the raw BASE
//   qcow2_crash_writer write OVERLAY SEED    random writes until killed

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "crash_ops.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"
#include "imgfmt/raw/raw_image.hpp"

namespace {

using pv::Result;
using pv::img::Qcow2Image;

Result<void> create(const std::string& overlay, const std::string& base) {
    auto backing = PV_TRY(pv::img::RawImage::open(base, pv::Access::ReadOnly));
    auto image =
        PV_TRY(Qcow2Image::create_overlay(overlay, std::move(backing), base, pv::img::Format::Raw));
    return image->flush();
}

// Prints "flushed N" after each flush: the first N operations are durable.
Result<void> write_forever(const std::string& overlay, uint64_t seed) {
    auto image = PV_TRY(Qcow2Image::open(overlay, pv::Access::ReadWrite, pv::img::Backing::Allow));
    pv::img::test::CrashOps ops(seed, image->size(), image->cluster_size());
    std::vector<std::byte> data(pv::img::test::CrashOps::kMaxClusters * image->cluster_size());
    std::printf("ready\n");
    std::fflush(stdout);
    for (uint64_t count = 1;; ++count) {
        const pv::img::test::CrashOp op = ops.next();
        if (op.zeroes) {
            PV_TRY(image->write_zeroes(op.offset, op.length));
        } else {
            std::fill(data.begin(), data.begin() + op.length, op.fill);
            PV_TRY(image->write_at(std::span(data).first(op.length), op.offset));
        }
        if (op.flush_after) {
            PV_TRY(image->flush());
            std::printf("flushed %llu\n", static_cast<unsigned long long>(count));
            std::fflush(stdout);
        }
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
