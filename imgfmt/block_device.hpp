#pragma once

// The one interface every disk backend implements: raw
// files, qcow/qcow2 images read by QcowImage, our qcow2 overlays. virtio-blk, commit and the
// FUSE export only ever see this.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::img {

// What a byte range of a device holds, as far as the backend knows cheaply.
enum class ExtentKind {
    Data,     // may hold non-zero bytes
    Zero,     // reads as zeroes (hole, zero cluster)
    Backing,  // overlays only: not stored in this layer, read from the backing device
};

struct Extent {
    uint64_t offset = 0;
    uint64_t length = 0;
    ExtentKind kind = ExtentKind::Data;
};

class BlockDevice {
  public:
    virtual ~BlockDevice() = default;

    // Virtual size in bytes.
    [[nodiscard]] virtual uint64_t size() const = 0;
    // Names the device in error messages (normally its file path).
    [[nodiscard]] virtual const std::string& name() const = 0;
    [[nodiscard]] virtual bool read_only() const = 0;

    // Reads/writes exactly buffer.size() bytes; a range past size() is an error.
    [[nodiscard]] virtual Result<void> read_at(std::span<std::byte> buffer, uint64_t offset) = 0;
    [[nodiscard]] virtual Result<void> write_at(std::span<const std::byte> buffer,
                                                uint64_t offset) = 0;
    // BUFFERS read (written) in order from consecutive bytes at OFFSET, as
    // one request where the backend can (raw files: preadv/pwritev); the
    // default calls read_at (write_at) per buffer. The guest's disk requests
    // come this way: an implementation builds no string unless it fails.
    [[nodiscard]] virtual Result<void> read_vectored(std::span<const std::span<std::byte>> buffers,
                                                     uint64_t offset);
    [[nodiscard]] virtual Result<void> write_vectored(
        std::span<const std::span<const std::byte>> buffers, uint64_t offset);
    // Makes every completed write durable.
    [[nodiscard]] virtual Result<void> flush() = 0;

    // After write_zeroes the range reads as zeroes. The default writes zeroes.
    [[nodiscard]] virtual Result<void> write_zeroes(uint64_t offset, uint64_t length);
    // A hint that the range is no longer needed; contents afterwards are
    // unspecified but stable. The default does nothing.
    [[nodiscard]] virtual Result<void> discard(uint64_t offset, uint64_t length);

    // Extents covering [offset, offset+length) in order, adjacent ones of the
    // same kind merged. The default reports one Data extent.
    [[nodiscard]] virtual Result<std::vector<Extent>> map(uint64_t offset, uint64_t length);

  protected:
    // Common range check for implementations: "read NAME: range ... past end".
    [[nodiscard]] Result<void> check_range(const char* verb, uint64_t offset,
                                           uint64_t length) const;
};

}  // namespace pv::img
