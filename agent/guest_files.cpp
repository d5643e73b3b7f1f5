#include "agent/guest_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "common/fd.hpp"

namespace pv::agent {

namespace {

// openat2 below ROOT_FD as if it were "/": ".." and absolute symlinks stop
// at the guest root, and /proc-style magic links are refused.
Fd open_in_root(int root_fd, const std::string& path, uint64_t flags) {
    struct open_how how {};
    // openat2 refuses O_PATH combined with anything but a few flags.
    how.flags = (flags & O_PATH) != 0 ? flags | O_CLOEXEC : flags | O_CLOEXEC | O_NOCTTY;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return Fd(static_cast<int>(syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how)));
}

Result<void> list_directory(Fd fd, const std::string& path, wire::FileData& data) {
    DIR* directory = fdopendir(fd.get());
    if (directory == nullptr)
        return fail(errno_error("list " + path + " in the guest"));
    (void)fd.release();
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = readdir(directory)) {
        const std::string name = entry->d_name;
        if (name == "." || name == "..")
            continue;
        if (names.size() == kMaxDirectoryEntries) {
            closedir(directory);
            return fail(Error{"list " + path + " in the guest",
                              "more than " + std::to_string(kMaxDirectoryEntries) + " entries",
                              EFBIG});
        }
        names.push_back(name);
    }
    const int error = errno;
    closedir(directory);
    if (error != 0)
        return fail(errno_error("list " + path + " in the guest", error));
    std::sort(names.begin(), names.end());
    data.set_kind(wire::FileData::KIND_DIRECTORY);
    for (auto& name : names)
        data.add_entries(std::move(name));
    return {};
}

Result<void> read_piece(const Fd& fd, const std::string& path, uint64_t size, uint64_t offset,
                        wire::FileData& data) {
    if (offset > size)
        return fail(Error{"read " + path + " in the guest",
                          "offset " + std::to_string(offset) + " is past the end", EINVAL});
    std::string bytes(static_cast<size_t>(std::min<uint64_t>(kMaxFilePiece, size - offset)), '\0');
    PV_TRY(
        pread_all(fd.get(), bytes.data(), bytes.size(), offset, "read " + path + " in the guest"));
    data.set_kind(wire::FileData::KIND_FILE);
    data.set_size(size);
    data.set_data(std::move(bytes));
    return {};
}

}  // namespace

Result<wire::FileData> read_guest_path(const std::string& root, const std::string& path,
                                       uint64_t offset) {
    if (path.empty() || path.front() != '/')
        return fail(Error{"read file", "the path must be absolute: '" + path + "'", EINVAL});
    const Fd root_fd = PV_TRY(Fd::open(root, O_RDONLY | O_DIRECTORY));
    wire::FileData data;
    // O_PATH first: a device node of the guest must not be opened at all.
    const Fd handle = open_in_root(root_fd.get(), path, O_PATH);
    if (!handle.valid()) {
        if (errno == ENOENT || errno == ENOTDIR)
            return data;  // KIND_MISSING
        return fail(errno_error("open " + path + " in the guest"));
    }
    struct stat status {};
    if (fstat(handle.get(), &status) != 0)
        return fail(errno_error("stat " + path + " in the guest"));
    if (!S_ISREG(status.st_mode) && !S_ISDIR(status.st_mode)) {
        data.set_kind(wire::FileData::KIND_OTHER);
        return data;
    }
    // Opened again for reading; it must still be what was checked.
    Fd fd = open_in_root(root_fd.get(), path,
                         S_ISDIR(status.st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    struct stat opened {};
    if (!fd.valid() || fstat(fd.get(), &opened) != 0)
        return fail(errno_error("open " + path + " in the guest"));
    if (opened.st_dev != status.st_dev || opened.st_ino != status.st_ino)
        return fail(Error{"open " + path + " in the guest", "it changed while being opened", EIO});
    if (S_ISDIR(status.st_mode))
        PV_TRY(list_directory(std::move(fd), path, data));
    else
        PV_TRY(read_piece(fd, path, static_cast<uint64_t>(status.st_size), offset, data));
    return data;
}

}  // namespace pv::agent
