#pragma once

// Our own qcow2 v3 image (qcow2 spec, docs/interop/qcow2.txt): the
// copy-on-write overlay over an original (backing file recorded with its
// absolute path and format), and the standalone target of a qcow2 commit.
// It also opens qcow2 files made by qemu-img, so overlays written by QEMU
// can be committed. Metadata writes are ordered so that a crash at any
// moment leaves a file qemu-img check accepts (leaks at most, never
// corruption): data, then refcounts, then L2, then L1.

#include <memory>
#include <optional>
#include <string>

#include "imgfmt/block_device.hpp"
#include "imgfmt/image.hpp"

namespace pv::img {

struct Qcow2CreateOptions {
    uint32_t cluster_bits = 16;  // 64 KiB clusters
};

class Qcow2Image final : public BlockDevice {
  public:
    // New overlay at PATH over BACKING (which stays open and is read for
    // unallocated clusters). BACKING_PATH is recorded absolute, with
    // BACKING_FORMAT in the backing-format header extension. Fails if PATH
    // exists.
    [[nodiscard]] static Result<std::unique_ptr<Qcow2Image>> create_overlay(
        const std::string& path, std::unique_ptr<BlockDevice> backing,
        const std::string& backing_path, Format backing_format, Qcow2CreateOptions options = {});

    // New qcow2 without a backing file, reading as zeroes everywhere.
    [[nodiscard]] static Result<std::unique_ptr<Qcow2Image>> create_standalone(
        const std::string& path, uint64_t virtual_size, Qcow2CreateOptions options = {});

    // Opens an existing qcow2 v2/v3 file (ours or qemu-img's). If the header
    // names a backing file it is opened with open_image(..., ReadOnly,
    // BACKING) — relative names resolved against PATH's directory — only
    // when BACKING is Allow; with Refuse such a file is an error.
    // Features we cannot write safely (compressed clusters, external data
    // file, extended L2, encryption, dirty/corrupt bits) make ReadWrite
    // fail with a clear error.
    [[nodiscard]] static Result<std::unique_ptr<Qcow2Image>> open(const std::string& path,
                                                                  Access access, Backing backing);

    ~Qcow2Image() override;

    [[nodiscard]] uint64_t size() const override;
    [[nodiscard]] const std::string& name() const override;
    [[nodiscard]] bool read_only() const override;
    [[nodiscard]] Result<void> read_at(std::span<std::byte> buffer, uint64_t offset) override;
    [[nodiscard]] Result<void> write_at(std::span<const std::byte> buffer,
                                        uint64_t offset) override;
    // fdatasync of data, then metadata in crash-safe order, then fdatasync.
    [[nodiscard]] Result<void> flush() override;
    // Whole clusters become zero clusters (L2 zero flag, no allocation);
    // partial clusters are written with zeroes.
    [[nodiscard]] Result<void> write_zeroes(uint64_t offset, uint64_t length) override;
    [[nodiscard]] Result<void> discard(uint64_t offset, uint64_t length) override;
    // This layer's view: Data = allocated in this file, Zero = zero
    // cluster, Backing = not in this file (reads fall through to the
    // backing device, or zeroes without one).
    [[nodiscard]] Result<std::vector<Extent>> map(uint64_t offset, uint64_t length) override;

    // Where this layer's stored data lies in the qcow2 file: guest ranges
    // within [OFFSET, OFFSET+LENGTH) whose bytes are stored contiguously at
    // host_offset. Commit copies them straight from file_descriptor(), in
    // file order, instead of reading through read_at in guest order.
    struct HostExtent {
        uint64_t offset = 0;
        uint64_t length = 0;
        uint64_t host_offset = 0;
    };
    [[nodiscard]] Result<std::vector<HostExtent>> data_extents(uint64_t offset, uint64_t length);
    [[nodiscard]] int file_descriptor() const;

    [[nodiscard]] uint32_t cluster_size() const;
    [[nodiscard]] const std::optional<std::string>& backing_file() const;
    [[nodiscard]] BlockDevice* backing() const;  // nullptr without one

    struct State;  // defined in qcow2_image.cpp

  private:
    explicit Qcow2Image(std::unique_ptr<State> state);
    std::unique_ptr<State> m_state;
};

}  // namespace pv::img
