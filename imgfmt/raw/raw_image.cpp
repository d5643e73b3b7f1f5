#include "imgfmt/raw/raw_image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>
#include <boost/container/small_vector.hpp>

namespace pv::img {

namespace {

// fallocate(2) reports these when the filesystem or file type cannot punch
// holes; every other errno is a real failure.
bool punch_unsupported(int code) {
    return code == EOPNOTSUPP || code == ENOSYS || code == EINVAL || code == ENODEV;
}

void append_extent(std::vector<Extent>& extents, uint64_t offset, uint64_t length,
                   ExtentKind kind) {
    if (length == 0)
        return;
    if (!extents.empty()) {
        Extent& last = extents.back();
        if (last.kind == kind && last.offset + last.length == offset) {
            last.length += length;
            return;
        }
    }
    extents.push_back(Extent{offset, length, kind});
}

}  // namespace

Result<uint64_t> device_size(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return fail(errno_error("stat " + path));
    if (S_ISDIR(st.st_mode))
        return fail(Error{path, "is a directory, not a disk image", EISDIR});
    if (S_ISREG(st.st_mode))
        return static_cast<uint64_t>(st.st_size);
    if (S_ISBLK(st.st_mode)) {
        // A block device has st_size 0; its end is where SEEK_END lands.
        const off_t end = ::lseek(fd, 0, SEEK_END);
        if (end < 0)
            return fail(errno_error("seek to the end of " + path));
        return static_cast<uint64_t>(end);
    }
    return fail(make_error(path, "is neither a regular file nor a block device"));
}

Result<std::unique_ptr<RawImage>> RawImage::open(const std::string& path, Access access) {
    const int flags = access == Access::ReadWrite ? O_RDWR : O_RDONLY;
    Fd fd = PV_TRY(Fd::open(path, flags));
    const uint64_t size = PV_TRY(device_size(fd.get(), path));
    return std::unique_ptr<RawImage>(new RawImage(std::move(fd), path, size, access));
}

Result<void> RawImage::read_at(std::span<std::byte> buffer, uint64_t offset) {
    const std::span<std::byte> one[] = {buffer};
    return read_vectored(one, offset);
}

Result<void> RawImage::write_at(std::span<const std::byte> buffer, uint64_t offset) {
    const std::span<const std::byte> one[] = {buffer};
    return write_vectored(one, offset);
}

template <class Byte>
Result<void> RawImage::transfer(std::span<const std::span<Byte>> buffers, uint64_t offset,
                                bool is_write) {
    const char* verb = is_write ? "write" : "read";
    if (is_write && read_only())
        return fail(Error{"write " + m_path, "the image is open read-only", EBADF});
    uint64_t length = 0;
    boost::container::small_vector<iovec, kInlineBuffers> iov;
    for (const auto& buffer : buffers) {
        iov.push_back({const_cast<std::byte*>(buffer.data()), buffer.size()});
        length += buffer.size();
    }
    PV_TRY(check_range(verb, offset, length));
    const std::span<iovec> all(iov.data(), iov.size());
    const int code =
        is_write ? pwritev_all(m_fd.get(), all, offset) : preadv_all(m_fd.get(), all, offset);
    if (code == ENODATA)
        return fail(make_error(fmt::format("{} {} at offset {}", verb, m_path, offset),
                               "unexpected end of file"));
    if (code != 0)
        return fail(errno_error(fmt::format("{} {} at offset {}", verb, m_path, offset), code));
    return {};
}

Result<void> RawImage::read_vectored(std::span<const std::span<std::byte>> buffers,
                                     uint64_t offset) {
    return transfer(buffers, offset, false);
}

Result<void> RawImage::write_vectored(std::span<const std::span<const std::byte>> buffers,
                                      uint64_t offset) {
    return transfer(buffers, offset, true);
}

Result<void> RawImage::flush() {
    if (::fdatasync(m_fd.get()) != 0)
        return fail(errno_error("flush " + m_path));
    return {};
}

Result<void> RawImage::write_zeroes(uint64_t offset, uint64_t length) {
    if (read_only())
        return fail(Error{"write zeroes to " + m_path, "the image is open read-only", EBADF});
    PV_TRY(check_range("write zeroes to", offset, length));
    if (length == 0)
        return {};
    // A punched hole reads as zeroes (fallocate(2)) and frees the blocks;
    // KEEP_SIZE because the disk's size must not change.
    if (::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(offset), static_cast<off_t>(length)) == 0)
        return {};
    if (!punch_unsupported(errno))
        return fail(
            errno_error("write zeroes to " + m_path + " at offset " + std::to_string(offset)));
    return BlockDevice::write_zeroes(offset, length);
}

Result<void> RawImage::discard(uint64_t offset, uint64_t length) {
    if (read_only())
        return fail(Error{"discard on " + m_path, "the image is open read-only", EBADF});
    PV_TRY(check_range("discard on", offset, length));
    if (length == 0)
        return {};
    // Discard is a hint: where holes cannot be punched the data simply stays.
    if (::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(offset), static_cast<off_t>(length)) == 0 ||
        punch_unsupported(errno))
        return {};
    return fail(errno_error("discard on " + m_path + " at offset " + std::to_string(offset)));
}

Result<std::vector<Extent>> RawImage::map(uint64_t offset, uint64_t length) {
    PV_TRY(check_range("map", offset, length));
    std::vector<Extent> extents;
    const uint64_t end = offset + length;
    uint64_t position = offset;
    while (position < end) {
        // lseek(2): SEEK_DATA gives the next data at or after POSITION;
        // ENXIO means only a hole remains up to the end of the file.
        const off_t data = ::lseek(m_fd.get(), static_cast<off_t>(position), SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO) {
                append_extent(extents, position, end - position, ExtentKind::Zero);
                break;
            }
            if (errno == EINVAL || errno == EOPNOTSUPP) {
                // No hole information here (some block devices): all Data.
                append_extent(extents, position, end - position, ExtentKind::Data);
                break;
            }
            return fail(errno_error("map " + m_path + " at offset " + std::to_string(position)));
        }
        const uint64_t data_start = std::min<uint64_t>(static_cast<uint64_t>(data), end);
        append_extent(extents, position, data_start - position, ExtentKind::Zero);
        if (data_start >= end)
            break;
        const off_t hole = ::lseek(m_fd.get(), data, SEEK_HOLE);
        if (hole < 0)
            return fail(errno_error("map " + m_path + " at offset " + std::to_string(data_start)));
        // SEEK_HOLE always finds one (the end of file counts), so HOLE > DATA.
        const uint64_t data_end = std::min<uint64_t>(
            std::max<uint64_t>(static_cast<uint64_t>(hole), data_start + 1), end);
        append_extent(extents, data_start, data_end - data_start, ExtentKind::Data);
        position = data_end;
    }
    return extents;
}

}  // namespace pv::img
