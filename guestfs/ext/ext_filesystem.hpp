#pragma once

// An ext2/3/4 filesystem read with libext2fs (e2fsprogs), the library
// e2fsck and debugfs are built on, through an I/O manager over a window of
// an img::BlockDevice (block_channel.hpp): raw and qcow2 images, overlays
// with their backing file and partitions all read alike. Opened read-only;
// a filesystem the kernel would change on mount (a journal that needs
// recovery) or that records errors is refused, since what the host reads
// would then not be what the guest will see.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "guestfs/filesystem.hpp"
#include "imgfmt/block_device.hpp"

namespace pv::guestfs {

class ExtFilesystem final : public GuestFilesystem {
  public:
    // Opens the filesystem occupying LENGTH bytes of DISK from OFFSET.
    // DESCRIPTION names it in every error. DISK must outlive the result.
    [[nodiscard]] static Result<std::unique_ptr<ExtFilesystem>> open(img::BlockDevice& disk,
                                                                     uint64_t offset,
                                                                     uint64_t length,
                                                                     std::string description);

    // Registers libext2fs's error texts with com_err (once per process), so
    // that messages say "Bad magic number in super-block" and not a number.
    static void load_error_messages();

    ~ExtFilesystem() override;

    [[nodiscard]] const std::string& describe() const override;
    [[nodiscard]] Result<bool> exists(const std::string& path) override;
    [[nodiscard]] Result<std::string> read_file(const std::string& path, size_t limit) override;
    [[nodiscard]] Result<std::vector<std::string>> list_directory(const std::string& path,
                                                                  size_t limit) override;

    struct State;  // defined in ext_filesystem.cpp

  private:
    explicit ExtFilesystem(std::unique_ptr<State> state);
    std::unique_ptr<State> m_state;
};

}  // namespace pv::guestfs
