#include "imgfmt/lock.hpp"

#include <fcntl.h>

#include <cerrno>

namespace pv::img {

namespace {

// The whole file, now and however it grows (fcntl(2): l_len 0 means "to the
// end of file and beyond").
struct flock whole_file(short type) {
    struct flock lock {};
    lock.l_type = type;
    lock.l_whence = SEEK_SET;
    lock.l_start = 0;
    lock.l_len = 0;
    lock.l_pid = 0;  // must be 0 for OFD locks
    return lock;
}

Error in_use(const std::string& path) {
    return Error{path, "image is in use by another process", EBUSY};
}

// Opens PATH for the lock. An exclusive (write) lock needs a file opened for
// writing; a file we may only read gets a shared lock instead, which still
// keeps writers (a VM running from it) out.
Result<std::pair<Fd, short>> open_for_lock(const std::string& path) {
    auto fd = Fd::open(path, O_RDWR);
    if (fd)
        return std::pair<Fd, short>{std::move(*fd), F_WRLCK};
    if (fd.error().code != EACCES && fd.error().code != EROFS)
        return fail(fd.error());
    Fd read_only = PV_TRY(Fd::open(path, O_RDONLY));
    return std::pair<Fd, short>{std::move(read_only), F_RDLCK};
}

}  // namespace

Result<ImageLock> ImageLock::acquire(const std::string& path) {
    auto [fd, type] = PV_TRY(open_for_lock(path));
    // QEMU takes only shared (F_RDLCK) OFD locks, on bytes 100+ for the
    // permissions it holds and 200+ for those it will not share
    // (block/file-posix.c, raw_apply_lock_bytes). A shared lock of ours would
    // not conflict with them; an exclusive lock conflicts with every one of
    // them, so qemu-io with or without -r is detected, and QEMU in turn cannot
    // take its locks while we hold ours. F_OFD_GETLK first, so the common
    // "in use" case does not depend on the error code of a failed F_OFD_SETLK.
    struct flock probe = whole_file(F_WRLCK);
    if (::fcntl(fd.get(), F_OFD_GETLK, &probe) != 0)
        return fail(errno_error("check the lock on " + path));
    if (probe.l_type != F_UNLCK)
        return fail(in_use(path));
    struct flock lock = whole_file(type);
    if (::fcntl(fd.get(), F_OFD_SETLK, &lock) != 0) {
        if (errno == EAGAIN || errno == EACCES)
            return fail(in_use(path));
        return fail(errno_error("lock " + path));
    }
    return ImageLock(std::move(fd), path);
}

}  // namespace pv::img
