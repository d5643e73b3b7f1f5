#include "imgfmt/replace.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "common/fd.hpp"

namespace pv::img {

namespace {

std::string random_suffix() {
    std::random_device device;
    return fmt::format("{:08x}{:08x}", device(), device());
}

}  // namespace

Result<TempFile> TempFile::next_to(const std::string& destination) {
    const std::filesystem::path target(destination);
    if (target.filename().empty())
        return fail(make_error("choose a file next to " + destination, "not a file name"));
    auto directory = target.parent_path();
    if (directory.empty())
        directory = ".";
    std::error_code error;
    if (!std::filesystem::is_directory(directory, error))
        return fail(make_error("write next to " + destination,
                               "directory " + directory.string() + " does not exist"));
    const auto name = "." + target.filename().string() + ".pv-tmp-" + random_suffix();
    return TempFile((directory / name).string());
}

TempFile::TempFile(TempFile&& other) noexcept
    : m_path(std::move(other.m_path)), m_installed(other.m_installed) {
    other.m_installed = true;  // the moved-from object owns nothing
}

TempFile::~TempFile() {
    if (!m_installed && !m_path.empty())
        ::unlink(m_path.c_str());
}

Result<void> fsync_directory_of(const std::string& path) {
    auto directory = std::filesystem::path(path).parent_path();
    if (directory.empty())
        directory = ".";
    auto fd = PV_TRY(Fd::open(directory.string(), O_RDONLY | O_DIRECTORY));
    if (::fsync(fd.get()) != 0)
        return fail(errno_error("fsync directory " + directory.string()));
    return {};
}

std::string backup_path_for(const std::string& original) {
    return original + ".pre-patch";
}

Result<void> TempFile::install(const std::string& destination,
                               const std::optional<std::string>& backup,
                               const std::string& mode_source) {
    auto fd = PV_TRY(Fd::open(m_path, O_RDWR));
    struct stat source {};
    if (::stat(mode_source.c_str(), &source) == 0) {
        if (::fchmod(fd.get(), source.st_mode & 07777) != 0)
            return fail(errno_error("set the mode of " + m_path));
        if (::fchown(fd.get(), source.st_uid, source.st_gid) != 0 && errno != EPERM)
            return fail(errno_error("set the owner of " + m_path));
    }
    if (::fsync(fd.get()) != 0)
        return fail(errno_error("fsync " + m_path));
    if (backup && ::link(destination.c_str(), backup->c_str()) != 0)
        return fail(errno_error("keep the original " + destination + " as " + *backup));
    if (::rename(m_path.c_str(), destination.c_str()) != 0) {
        const int saved = errno;
        if (backup)
            ::unlink(backup->c_str());
        return fail(errno_error("rename " + m_path + " to " + destination, saved));
    }
    m_installed = true;
    return fsync_directory_of(destination);
}

}  // namespace pv::img
