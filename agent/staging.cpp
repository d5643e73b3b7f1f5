#include "agent/staging.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace pv::agent {

namespace {

constexpr const char* kDirectoryName = ".pv-agent-staging";

Error stage_error(const std::string& name, std::string detail, int code) {
    return Error{"stage " + name, std::move(detail), code};
}

}  // namespace

bool is_safe_file_name(const std::string& name) {
    if (name.empty() || name.size() > 200 || name.front() == '.' || name.front() == '-')
        return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+' || c == '-' ||
                        c == '~' || c == '%';
        if (!ok)
            return false;
    }
    return true;
}

Result<Stager> Stager::create(const std::string& root) {
    Fd root_fd = PV_TRY(Fd::open(root, O_RDONLY | O_DIRECTORY));
    if (mkdirat(root_fd.get(), kDirectoryName, 0700) != 0 && errno != EEXIST)
        return fail(errno_error("create staging directory in " + root));
    // O_NOFOLLOW refuses a symlink the guest may have planted at this name.
    const int fd =
        openat(root_fd.get(), kDirectoryName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return fail(errno_error("open staging directory in " + root));
    return Stager(root, Fd(fd));
}

Stager::~Stager() {
    if (m_directory.valid())
        (void)remove_all();
}

Result<void> Stager::start_upload(const wire::StageChunk& chunk) {
    const std::string& name = chunk.name();
    if (chunk.total_size() > kMaxStagedFileSize)
        return fail(stage_error(
            name, "file of " + std::to_string(chunk.total_size()) + " bytes is over the limit",
            EFBIG));
    auto old = m_uploads.find(name);
    if (old != m_uploads.end()) {
        m_total_size -= old->second.total_size;
        m_uploads.erase(old);
    }
    if (m_total_size + chunk.total_size() > kMaxStagedTotalSize)
        return fail(stage_error(name, "staged files would exceed the total limit", EFBIG));
    struct statvfs fs {};
    if (fstatvfs(m_directory.get(), &fs) == 0 &&
        chunk.total_size() > static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize)
        return fail(stage_error(name, "not enough free space in the guest filesystem", ENOSPC));
    unlinkat(m_directory.get(), name.c_str(), 0);
    const int fd = openat(m_directory.get(), name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail(errno_error("create staged file " + name));
    Upload upload;
    upload.fd = Fd(fd);
    upload.total_size = chunk.total_size();
    upload.expected_sha256 = chunk.sha256();
    m_total_size += upload.total_size;
    m_uploads.emplace(name, std::move(upload));
    return {};
}

Result<bool> Stager::write_chunk(const wire::StageChunk& chunk) {
    const std::string& name = chunk.name();
    if (!is_safe_file_name(name))
        return fail(stage_error(name, "unsafe file name", EPROTO));
    if (chunk.sha256().size() != 32)
        return fail(stage_error(name, "SHA-256 must be 32 bytes", EPROTO));
    if (chunk.offset() == 0)
        PV_TRY(start_upload(chunk));
    auto it = m_uploads.find(name);
    if (it == m_uploads.end() || it->second.complete)
        return fail(stage_error(name,
                                "chunk at offset " + std::to_string(chunk.offset()) +
                                    " without a preceding chunk at offset 0",
                                EPROTO));
    Upload& upload = it->second;
    if (chunk.offset() != upload.received)
        return fail(stage_error(name,
                                "chunk at offset " + std::to_string(chunk.offset()) +
                                    ", expected " + std::to_string(upload.received),
                                EPROTO));
    if (chunk.total_size() != upload.total_size || chunk.sha256() != upload.expected_sha256)
        return fail(stage_error(name, "size or SHA-256 changed between chunks", EPROTO));
    if (chunk.data().size() > upload.total_size - upload.received)
        return fail(stage_error(name, "chunk runs past the announced size", EPROTO));
    PV_TRY(pwrite_all(upload.fd.get(), chunk.data().data(), chunk.data().size(), upload.received,
                      "write staged file " + name));
    upload.hash.update(chunk.data().data(), chunk.data().size());
    upload.received += chunk.data().size();
    if (upload.received < upload.total_size)
        return false;
    return finish_upload(name, upload);
}

Result<bool> Stager::finish_upload(const std::string& name, Upload& upload) {
    if (upload.hash.finish() != upload.expected_sha256) {
        unlinkat(m_directory.get(), name.c_str(), 0);
        m_total_size -= upload.total_size;
        m_uploads.erase(name);
        return fail(stage_error(name, "SHA-256 of the received file does not match", EBADMSG));
    }
    if (fsync(upload.fd.get()) != 0)
        return fail(errno_error("sync staged file " + name));
    upload.fd.reset();
    upload.complete = true;
    return true;
}

Result<std::string> Stager::staged_path(const std::string& name) const {
    auto it = m_uploads.find(name);
    if (it == m_uploads.end() || !it->second.complete)
        return fail(stage_error(name, "file is not (completely) staged", EPROTO));
    return std::string(kStagingDirectory) + "/" + name;
}

Result<void> Stager::remove_all() {
    for (const auto& [name, upload] : m_uploads)
        unlinkat(m_directory.get(), name.c_str(), 0);
    m_uploads.clear();
    m_total_size = 0;
    m_directory.reset();
    Fd root_fd = PV_TRY(Fd::open(m_root, O_RDONLY | O_DIRECTORY));
    if (unlinkat(root_fd.get(), kDirectoryName, AT_REMOVEDIR) != 0 && errno != ENOENT)
        return fail(errno_error("remove staging directory"));
    return {};
}

}  // namespace pv::agent
