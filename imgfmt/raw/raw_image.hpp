#pragma once

// A raw disk image: the file's bytes are the disk. preadv/pwritev; holes are
// reported by map() through SEEK_DATA/SEEK_HOLE; write_zeroes and discard
// punch holes where the filesystem can.

#include <memory>
#include <string>

#include "common/fd.hpp"
#include "imgfmt/block_device.hpp"
#include "imgfmt/image.hpp"

namespace pv::img {

// The size of the regular file or block device open on FD; a directory or
// any other kind of file is an error naming PATH.
[[nodiscard]] Result<uint64_t> device_size(int fd, const std::string& path);

class RawImage final : public BlockDevice {
  public:
    [[nodiscard]] static Result<std::unique_ptr<RawImage>> open(const std::string& path,
                                                                Access access);

    [[nodiscard]] uint64_t size() const override { return m_size; }
    [[nodiscard]] const std::string& name() const override { return m_path; }
    [[nodiscard]] bool read_only() const override { return m_access == Access::ReadOnly; }
    [[nodiscard]] Result<void> read_at(std::span<std::byte> buffer, uint64_t offset) override;
    [[nodiscard]] Result<void> write_at(std::span<const std::byte> buffer,
                                        uint64_t offset) override;
    [[nodiscard]] Result<void> read_vectored(std::span<const std::span<std::byte>> buffers,
                                             uint64_t offset) override;
    [[nodiscard]] Result<void> write_vectored(std::span<const std::span<const std::byte>> buffers,
                                              uint64_t offset) override;
    [[nodiscard]] Result<void> flush() override;
    [[nodiscard]] Result<void> write_zeroes(uint64_t offset, uint64_t length) override;
    [[nodiscard]] Result<void> discard(uint64_t offset, uint64_t length) override;
    [[nodiscard]] Result<std::vector<Extent>> map(uint64_t offset, uint64_t length) override;

    // The open file, for copy_file_range/FICLONE in commit.
    [[nodiscard]] int fd() const { return m_fd.get(); }

  private:
    // Buffers a request carries without allocating (virtio-blk: a 4 KiB
    // page each).
    static constexpr size_t kInlineBuffers = 16;

    template <class Byte>
    Result<void> transfer(std::span<const std::span<Byte>> buffers, uint64_t offset, bool is_write);

    RawImage(Fd fd, std::string path, uint64_t size, Access access)
        : m_fd(std::move(fd)), m_path(std::move(path)), m_size(size), m_access(access) {}

    Fd m_fd;
    std::string m_path;
    uint64_t m_size;
    Access m_access;
};

}  // namespace pv::img
