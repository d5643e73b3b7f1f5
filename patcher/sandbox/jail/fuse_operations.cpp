// The FUSE request handlers of the export: a root directory holding one
// regular file whose bytes are the device's. The file's size is fixed.

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "patcher/sandbox/jail/fuse_state.hpp"

namespace pv::sandbox {

namespace {

// Attributes never change behind the kernel's back: cache them for long.
constexpr double kCacheSeconds = 3600.0;

using State = FuseExport::State;

State& state_of(fuse_req_t request) {
    return *static_cast<State*>(fuse_req_userdata(request));
}

struct stat attributes_of(const State& state, fuse_ino_t inode) {
    struct stat attributes {};
    attributes.st_ino = inode;
    attributes.st_atim = attributes.st_mtim = attributes.st_ctim = state.started;
    if (inode == FUSE_ROOT_ID) {
        attributes.st_mode = S_IFDIR | 0700;
        attributes.st_nlink = 2;
    } else {
        attributes.st_mode = S_IFREG | (state.device.read_only() ? 0400 : 0600);
        attributes.st_nlink = 1;
        attributes.st_size = static_cast<off_t>(state.device.size());
        attributes.st_blocks = static_cast<blkcnt_t>((state.device.size() + 511) / 512);
        attributes.st_blksize = 4096;
    }
    return attributes;
}

// Logs a device failure and answers EIO: the kernel (and so the loop
// device and the guest filesystem) sees an I/O error, never our message.
void reply_device_error(fuse_req_t request, State& state, const Error& error) {
    state.io_errors.fetch_add(1);
    std::fprintf(stderr, "patchvisor: FUSE export %s: %s\n", state.file_path.c_str(),
                 error.message().c_str());
    fuse_reply_err(request, EIO);
}

void on_lookup(fuse_req_t request, fuse_ino_t parent, const char* name) {
    State& state = state_of(request);
    if (parent != FUSE_ROOT_ID || state.file_name != name) {
        fuse_reply_err(request, ENOENT);
        return;
    }
    fuse_entry_param entry{};
    entry.ino = kFileInode;
    entry.attr = attributes_of(state, kFileInode);
    entry.attr_timeout = kCacheSeconds;
    entry.entry_timeout = kCacheSeconds;
    fuse_reply_entry(request, &entry);
}

void on_getattr(fuse_req_t request, fuse_ino_t inode, fuse_file_info*) {
    if (inode != FUSE_ROOT_ID && inode != kFileInode) {
        fuse_reply_err(request, ENOENT);
        return;
    }
    const struct stat attributes = attributes_of(state_of(request), inode);
    fuse_reply_attr(request, &attributes, kCacheSeconds);
}

// Only a truncate to the current size (which O_TRUNC-free tools never send
// anyway) or a time change is accepted: the disk's size is fixed.
void on_setattr(fuse_req_t request, fuse_ino_t inode, struct stat* wanted, int fields,
                fuse_file_info*) {
    State& state = state_of(request);
    if (inode != kFileInode) {
        fuse_reply_err(request, EPERM);
        return;
    }
    if ((fields & FUSE_SET_ATTR_SIZE) != 0 &&
        static_cast<uint64_t>(wanted->st_size) != state.device.size()) {
        fuse_reply_err(request, EPERM);
        return;
    }
    const struct stat attributes = attributes_of(state, inode);
    fuse_reply_attr(request, &attributes, kCacheSeconds);
}

void on_open(fuse_req_t request, fuse_ino_t inode, fuse_file_info* info) {
    State& state = state_of(request);
    if (inode != kFileInode) {
        fuse_reply_err(request, EISDIR);
        return;
    }
    if ((info->flags & O_ACCMODE) != O_RDONLY && state.device.read_only()) {
        fuse_reply_err(request, EROFS);
        return;
    }
    // Direct I/O: the loop device above keeps its own page cache, so a
    // second one here would only double the memory and delay writes.
    info->direct_io = 1;
    fuse_reply_open(request, info);
}

void on_read(fuse_req_t request, fuse_ino_t, size_t size, off_t offset, fuse_file_info*) {
    State& state = state_of(request);
    const uint64_t device_size = state.device.size();
    const uint64_t start = std::min<uint64_t>(static_cast<uint64_t>(offset), device_size);
    const size_t length = static_cast<size_t>(std::min<uint64_t>(size, device_size - start));
    std::vector<std::byte> buffer(length);
    std::lock_guard lock(state.device_mutex);
    if (auto done = state.device.read_at(buffer, start); !done) {
        reply_device_error(request, state, done.error());
        return;
    }
    fuse_reply_buf(request, reinterpret_cast<const char*>(buffer.data()), buffer.size());
}

void on_write(fuse_req_t request, fuse_ino_t, const char* data, size_t size, off_t offset,
              fuse_file_info*) {
    State& state = state_of(request);
    const uint64_t start = static_cast<uint64_t>(offset);
    if (start > state.device.size() || size > state.device.size() - start) {
        fuse_reply_err(request, ENOSPC);  // what a full block device says
        return;
    }
    std::lock_guard lock(state.device_mutex);
    auto done = state.device.write_at({reinterpret_cast<const std::byte*>(data), size}, start);
    if (!done) {
        reply_device_error(request, state, done.error());
        return;
    }
    state.dirty = true;
    fuse_reply_write(request, size);
}

void flush_device(fuse_req_t request) {
    State& state = state_of(request);
    std::lock_guard lock(state.device_mutex);
    if (state.dirty) {
        if (auto done = state.device.flush(); !done) {
            reply_device_error(request, state, done.error());
            return;
        }
        state.dirty = false;
    }
    fuse_reply_err(request, 0);
}

// The loop device sends fsync for REQ_OP_FLUSH; close(2) sends flush.
void on_fsync(fuse_req_t request, fuse_ino_t, int, fuse_file_info*) {
    flush_device(request);
}
void on_flush(fuse_req_t request, fuse_ino_t, fuse_file_info*) {
    flush_device(request);
}

// The loop device turns discards and write-zeroes into PUNCH_HOLE and
// ZERO_RANGE; both must read back as zeroes afterwards (fallocate(2)).
void on_fallocate(fuse_req_t request, fuse_ino_t, int mode, off_t offset, off_t length,
                  fuse_file_info*) {
    State& state = state_of(request);
    const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
    const uint64_t size = state.device.size();
    if ((mode & ~known) != 0 || offset < 0 || length <= 0) {
        fuse_reply_err(request, (mode & ~known) != 0 ? EOPNOTSUPP : EINVAL);
        return;
    }
    const uint64_t start = std::min<uint64_t>(static_cast<uint64_t>(offset), size);
    const uint64_t end = std::min<uint64_t>(start + static_cast<uint64_t>(length), size);
    if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) == 0) {
        // Plain allocation: the space is the overlay's business; only
        // growing the file is refused.
        const bool grows = static_cast<uint64_t>(offset) + static_cast<uint64_t>(length) > size;
        fuse_reply_err(request, grows && (mode & FALLOC_FL_KEEP_SIZE) == 0 ? EFBIG : 0);
        return;
    }
    std::lock_guard lock(state.device_mutex);
    if (end > start) {
        if (auto done = state.device.write_zeroes(start, end - start); !done) {
            reply_device_error(request, state, done.error());
            return;
        }
        state.dirty = true;
    }
    fuse_reply_err(request, 0);
}

void add_entry(fuse_req_t request, std::vector<char>& listing, const char* name, fuse_ino_t inode,
               mode_t mode) {
    struct stat attributes {};
    attributes.st_ino = inode;
    attributes.st_mode = mode;
    const size_t used = listing.size();
    const size_t needed = fuse_add_direntry(request, nullptr, 0, name, nullptr, 0);
    listing.resize(used + needed);
    fuse_add_direntry(request, listing.data() + used, needed, name, &attributes,
                      static_cast<off_t>(used + needed));
}

void on_readdir(fuse_req_t request, fuse_ino_t inode, size_t size, off_t offset, fuse_file_info*) {
    if (inode != FUSE_ROOT_ID) {
        fuse_reply_err(request, ENOTDIR);
        return;
    }
    std::vector<char> listing;
    add_entry(request, listing, ".", FUSE_ROOT_ID, S_IFDIR);
    add_entry(request, listing, "..", FUSE_ROOT_ID, S_IFDIR);
    add_entry(request, listing, state_of(request).file_name.c_str(), kFileInode, S_IFREG);
    const size_t start = std::min(static_cast<size_t>(std::max<off_t>(offset, 0)), listing.size());
    fuse_reply_buf(request, listing.data() + start, std::min(size, listing.size() - start));
}

fuse_lowlevel_ops make_operations() {
    fuse_lowlevel_ops operations{};
    operations.lookup = on_lookup;
    operations.getattr = on_getattr;
    operations.setattr = on_setattr;
    operations.open = on_open;
    operations.read = on_read;
    operations.write = on_write;
    operations.flush = on_flush;
    operations.fsync = on_fsync;
    operations.fallocate = on_fallocate;
    operations.readdir = on_readdir;
    return operations;
}

}  // namespace

const fuse_lowlevel_ops& export_operations() {
    static const fuse_lowlevel_ops operations = make_operations();
    return operations;
}

}  // namespace pv::sandbox
