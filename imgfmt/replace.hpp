#pragma once

// Installing a finished image atomically (DESIGN.md "Commit and replace"):
// the new file is written next to its destination, made durable, and
// renamed over it; the directory is fsynced so the rename itself survives a
// crash. Until the rename the destination is untouched.

#include <optional>
#include <string>

#include "common/error.hpp"

namespace pv::img {

// A file in the destination's directory that is removed unless installed.
class TempFile {
  public:
    // Reserves a fresh name "<dir>/.<name>.pv-tmp-<random>" next to
    // DESTINATION; the file itself is not created.
    [[nodiscard]] static Result<TempFile> next_to(const std::string& destination);

    TempFile(TempFile&& other) noexcept;
    TempFile& operator=(TempFile&&) = delete;
    TempFile(const TempFile&) = delete;
    ~TempFile();

    [[nodiscard]] const std::string& path() const { return m_path; }

    // fsyncs the file, gives it MODE_SOURCE's mode and owner (when that
    // exists), links DESTINATION to BACKUP first when asked, renames the
    // file over DESTINATION and fsyncs the directory. BACKUP must not exist.
    [[nodiscard]] Result<void> install(const std::string& destination,
                                       const std::optional<std::string>& backup,
                                       const std::string& mode_source);

  private:
    explicit TempFile(std::string path) : m_path(std::move(path)) {}
    std::string m_path;
    bool m_installed = false;
};

[[nodiscard]] Result<void> fsync_directory_of(const std::string& path);

// The path of the original's backup: "NAME.pre-patch".
[[nodiscard]] std::string backup_path_for(const std::string& original);

}  // namespace pv::img
