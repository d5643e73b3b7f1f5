// Removing one leftover of a dead patchvisor (gc_scan.hpp).

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "patcher/cli/gc_scan.hpp"

namespace pv::cli {

namespace {

std::string loop_backing_file(const std::string& device) {
    const auto name = device.substr(device.rfind('/') + 1);
    std::ifstream in("/sys/block/" + name + "/loop/backing_file");
    std::string line;
    std::getline(in, line);
    return line;
}

// LOOP_CLR_FD (loop(4)); when something still holds the device the kernel
// defers the detach to the last close, so wait a little for it.
Result<void> detach_loop(const std::string& device) {
    auto fd = Fd::open(device, O_RDONLY);
    if (!fd)
        return loop_backing_file(device).empty() ? Result<void>{} : fail(fd.error());
    if (::ioctl(fd->get(), LOOP_CLR_FD, 0) != 0 && errno != ENXIO)
        return fail(errno_error("detach " + device));
    fd->reset();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (!loop_backing_file(device).empty()) {
        if (std::chrono::steady_clock::now() > deadline)
            return fail(make_error("detach " + device,
                                   "still in use; the kernel detaches it "
                                   "when its last user closes it"));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return {};
}

// Lazily: a dead FUSE mount cannot answer, and a loop device may still pin it.
Result<void> unmount(const std::string& point) {
    if (::umount2(point.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0 || errno == EINVAL ||
        errno == ENOENT)
        return {};
    return fail(errno_error("unmount " + point));
}

Result<void> remove_path(const std::string& path, bool directory) {
    if ((directory ? ::rmdir(path.c_str()) : ::unlink(path.c_str())) == 0 || errno == ENOENT)
        return {};
    return fail(errno_error("remove " + path));
}

// The directory's own entries (agent.sock, the emptied export/ and
// whatever else a sandbox put there) and then the directory; subdirectories
// are only rmdir'ed, so nothing below a mount that survived is touched.
Result<void> remove_runtime_dir(const std::string& path) {
    if (DIR* directory = ::opendir(path.c_str())) {
        std::vector<std::pair<std::string, bool>> entries;
        while (const dirent* entry = ::readdir(directory)) {
            const std::string name = entry->d_name;
            if (name == "." || name == "..")
                continue;
            struct stat status {};
            const auto child = path + "/" + name;
            if (::lstat(child.c_str(), &status) == 0)
                entries.emplace_back(child, S_ISDIR(status.st_mode));
        }
        ::closedir(directory);
        for (const auto& [child, is_directory] : entries)
            PV_TRY(remove_path(child, is_directory));
    }
    return remove_path(path, true);
}

// Writing to .../N/abort ends every request of connection N with an error
// (Documentation/filesystems/fuse.rst, "Aborting a filesystem connection").
Result<void> abort_fuse_connection(const std::string& connection) {
    // fusectl may not be mounted yet (its directory is then empty).
    if (::access(connection.c_str(), F_OK) != 0)
        (void)::mount("fusectl", kFuseConnections, "fusectl", 0, nullptr);
    auto fd = Fd::open(connection + "/abort", O_WRONLY);
    if (!fd)
        return {};  // the connection is gone already
    if (::write(fd->get(), "1", 1) != 1)
        return fail(errno_error("abort FUSE connection " + connection));
    return {};
}

}  // namespace

Result<void> remove_leftover(const Leftover& leftover) {
    switch (leftover.kind) {
        case LeftoverKind::FuseConnection:
            return abort_fuse_connection(leftover.path);
        case LeftoverKind::LoopDevice:
            return detach_loop(leftover.path);
        case LeftoverKind::Mount:
            return unmount(leftover.path);
        case LeftoverKind::RuntimeDir:
            return remove_runtime_dir(leftover.path);
        case LeftoverKind::TempTarget:
        case LeftoverKind::Overlay:
        case LeftoverKind::JobRecord:
            return remove_path(leftover.path, false);
    }
    return fail(make_error("remove " + leftover.path, "unknown kind"));
}

}  // namespace pv::cli
