#pragma once

// Helpers shared by the fuzz targets: cutting the fuzzer's input into pieces
// and handing it to code that only reads files. Kept free of libFuzzer
// headers so the same targets build with GCC for the regression replay.

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace pv::fuzz {

// A cursor over the input that never reads past its end.
class Input {
  public:
    Input(const uint8_t* data, size_t size) : m_rest(reinterpret_cast<const char*>(data), size) {}

    [[nodiscard]] bool empty() const { return m_rest.empty(); }
    [[nodiscard]] std::string_view rest() const { return m_rest; }

    // The next byte, or 0 once the input is used up.
    [[nodiscard]] uint8_t take_byte() {
        if (m_rest.empty())
            return 0;
        const auto byte = static_cast<uint8_t>(m_rest.front());
        m_rest.remove_prefix(1);
        return byte;
    }

    // The next two bytes as a little-endian number (0 once used up).
    [[nodiscard]] uint16_t take_le16() {
        const uint8_t low = take_byte();
        return static_cast<uint16_t>(low | take_byte() << 8);
    }

    // Up to COUNT bytes.
    [[nodiscard]] std::string_view take(size_t count) {
        const std::string_view piece = m_rest.substr(0, std::min(count, m_rest.size()));
        m_rest.remove_prefix(piece.size());
        return piece;
    }

    // Up to the next SEPARATOR (which is consumed), or everything left.
    [[nodiscard]] std::string_view take_until(char separator) {
        const size_t end = m_rest.find(separator);
        const std::string_view piece = m_rest.substr(0, end);
        m_rest.remove_prefix(end == std::string_view::npos ? m_rest.size() : end + 1);
        return piece;
    }

  private:
    std::string_view m_rest;
};

// Chunk sizes for feeding a stream in pieces, drawn from a small generator
// seeded by one input byte: seed 0 feeds everything at once, so a valid
// stream in the corpus is also exercised whole.
class ChunkSizes {
  public:
    explicit ChunkSizes(uint8_t seed) : m_state(seed) {}

    [[nodiscard]] size_t next() {
        if (m_state == 0)
            return SIZE_MAX;
        // Numerical Recipes' LCG; the quality hardly matters, only variety.
        m_state = m_state * 1664525u + 1013904223u;
        const uint32_t pick = m_state >> 24;
        // Mostly tiny pieces (a length prefix split in two), sometimes large.
        return pick < 192 ? 1 + pick % 7 : 1 + (size_t{pick} << 6);
    }

  private:
    uint32_t m_state;
};

// The input as a read-only file: an anonymous memfd named through
// /proc/self/fd, so image readers that take a path see real file semantics
// (size, pread, fstat) without touching the disk.
class MemoryFile {
  public:
    explicit MemoryFile(std::string_view contents) {
        m_fd = ::memfd_create("pv-fuzz-input", MFD_CLOEXEC);
        if (m_fd < 0)
            std::abort();
        size_t done = 0;
        while (done < contents.size()) {
            const ssize_t written = ::write(m_fd, contents.data() + done, contents.size() - done);
            if (written <= 0)
                std::abort();
            done += static_cast<size_t>(written);
        }
        m_path = "/proc/self/fd/" + std::to_string(m_fd);
    }
    MemoryFile(const MemoryFile&) = delete;
    MemoryFile& operator=(const MemoryFile&) = delete;
    ~MemoryFile() { ::close(m_fd); }

    [[nodiscard]] const std::string& path() const { return m_path; }

  private:
    int m_fd = -1;
    std::string m_path;
};

}  // namespace pv::fuzz
