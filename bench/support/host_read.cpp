// pv-bench-host-read FILE MIB REQUEST_KIB SEGMENT_KIB RANDOM: the host side
// of bench/virtio. Reads MIB MiB of FILE with preadv(2), REQUEST_KIB per
// call in buffers of SEGMENT_KIB, at sequential offsets (wrapping at the end
// of the file) or, when RANDOM is 1, at the request-aligned offsets of the
// test guest's xorshift64 sequence (images/testguest/blk_bench.c), and
// prints MiB/s.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: pv-bench-host-read FILE MIB REQUEST_KIB SEGMENT_KIB RANDOM\n");
        return 2;
    }
    const uint64_t mib = std::strtoull(argv[2], nullptr, 10);
    const uint64_t request = std::strtoull(argv[3], nullptr, 10) << 10;
    const uint64_t segment = std::strtoull(argv[4], nullptr, 10) << 10;
    const bool random = std::atoi(argv[5]) == 1;
    const int fd = ::open(argv[1], O_RDONLY);
    struct stat file {};
    if (fd < 0 || ::fstat(fd, &file) != 0 || request == 0 || segment == 0 ||
        request % segment != 0 || static_cast<uint64_t>(file.st_size) < request) {
        std::perror(argv[1]);
        return 1;
    }
    const uint64_t size = static_cast<uint64_t>(file.st_size);
    std::vector<char> memory(request);
    std::vector<iovec> buffers;
    for (uint64_t at = 0; at < request; at += segment)
        buffers.push_back({memory.data() + at, segment});
    uint64_t state = 0x9e3779b97f4a7c15ull;
    uint64_t offset = 0;
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t done = 0; done < (mib << 20) / request; ++done) {
        if (random) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            offset = state % (size / request) * request;
        } else if (offset + request > size) {
            offset = 0;
        }
        if (::preadv(fd, buffers.data(), static_cast<int>(buffers.size()),
                     static_cast<off_t>(offset)) != static_cast<ssize_t>(request)) {
            std::fprintf(stderr, "pv-bench-host-read: short read at %llu\n",
                         static_cast<unsigned long long>(offset));
            return 1;
        }
        if (!random)
            offset += request;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%.1f\n", static_cast<double>(mib) / seconds);
    return 0;
}
