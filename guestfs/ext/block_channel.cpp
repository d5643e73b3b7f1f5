#include "guestfs/ext/block_channel.hpp"

#include <charconv>
#include <cstring>
#include <span>

namespace pv::guestfs::detail {

namespace {

DiskWindow* window_of(io_channel channel) {
    return static_cast<DiskWindow*>(channel->private_data);
}

errcode_t open_channel(const char* name, int flags, io_channel* channel) {
    if (name == nullptr || channel == nullptr)
        return EXT2_ET_INVALID_ARGUMENT;
    if ((flags & IO_FLAG_RW) != 0)
        return EXT2_ET_RO_FILSYS;
    uintptr_t address = 0;
    const char* end = name + std::strlen(name);
    const auto parsed = std::from_chars(name, end, address);
    if (parsed.ec != std::errc() || parsed.ptr != end || address == 0)
        return EXT2_ET_INVALID_ARGUMENT;
    auto* window = reinterpret_cast<DiskWindow*>(address);
    if (window->magic != DiskWindow::kMagic || window->disk == nullptr)
        return EXT2_ET_INVALID_ARGUMENT;

    io_channel made = nullptr;
    if (errcode_t error = ext2fs_get_memzero(sizeof(*made), &made))
        return error;
    if (errcode_t error = ext2fs_get_mem(std::strlen(name) + 1, &made->name)) {
        ext2fs_free_mem(&made);
        return error;
    }
    std::strcpy(made->name, name);
    made->magic = EXT2_ET_MAGIC_IO_CHANNEL;
    made->manager = block_io_manager();
    made->block_size = 1024;
    made->refcount = 1;
    made->private_data = window;
    *channel = made;
    return 0;
}

errcode_t close_channel(io_channel channel) {
    if (--channel->refcount > 0)
        return 0;
    ext2fs_free_mem(&channel->name);
    ext2fs_free_mem(&channel);
    return 0;
}

errcode_t set_block_size(io_channel channel, int block_size) {
    // ext2/3/4 blocks are 1 KiB to 64 KiB; anything else is a bad superblock.
    if (block_size < 1024 || block_size > 65536 || (block_size & (block_size - 1)) != 0)
        return EXT2_ET_INVALID_ARGUMENT;
    channel->block_size = block_size;
    return 0;
}

// COUNT blocks from BLOCK, or -COUNT bytes when COUNT is negative (ext2_io.h).
errcode_t read_blocks64(io_channel channel, unsigned long long block, int count, void* data) {
    DiskWindow& window = *window_of(channel);
    const uint64_t block_size = static_cast<uint64_t>(channel->block_size);
    const uint64_t bytes = count < 0 ? static_cast<uint64_t>(-static_cast<int64_t>(count))
                                     : static_cast<uint64_t>(count) * block_size;
    if (block > window.length / block_size)
        return EXT2_ET_SHORT_READ;
    const uint64_t offset = block * block_size;
    if (bytes > window.length - offset) {
        window.last_error = "a read of " + std::to_string(bytes) + " bytes at " +
                            std::to_string(offset) + " reaches past the filesystem's " +
                            std::to_string(window.length) + " bytes";
        return EXT2_ET_SHORT_READ;
    }
    std::span<std::byte> buffer(static_cast<std::byte*>(data), bytes);
    auto done = window.disk->read_at(buffer, window.offset + offset);
    if (!done) {
        window.last_error = done.error().message();
        return done.error().code != 0 ? done.error().code : EXT2_ET_SHORT_READ;
    }
    return 0;
}

errcode_t read_blocks(io_channel channel, unsigned long block, int count, void* data) {
    return read_blocks64(channel, block, count, data);
}

errcode_t refuse_write(io_channel, unsigned long, int, const void*) {
    return EXT2_ET_RO_FILSYS;
}

errcode_t refuse_write64(io_channel, unsigned long long, int, const void*) {
    return EXT2_ET_RO_FILSYS;
}

errcode_t flush_nothing(io_channel) {
    return 0;
}

errcode_t no_options(io_channel, const char*, const char*) {
    return EXT2_ET_INVALID_ARGUMENT;
}

struct_io_manager make_manager() {
    struct_io_manager manager{};
    manager.magic = EXT2_ET_MAGIC_IO_MANAGER;
    manager.name = "patchvisor block device";
    manager.open = open_channel;
    manager.close = close_channel;
    manager.set_blksize = set_block_size;
    manager.read_blk = read_blocks;
    manager.write_blk = refuse_write;
    manager.flush = flush_nothing;
    manager.write_byte = refuse_write;
    manager.set_option = no_options;
    manager.read_blk64 = read_blocks64;
    manager.write_blk64 = refuse_write64;
    // discard, cache_readahead, zeroout and get_stats stay null: libext2fs
    // checks for them before calling.
    return manager;
}

}  // namespace

io_manager block_io_manager() {
    static struct_io_manager manager = make_manager();
    return &manager;
}

std::string channel_name(DiskWindow& window) {
    return std::to_string(reinterpret_cast<uintptr_t>(&window));
}

}  // namespace pv::guestfs::detail
