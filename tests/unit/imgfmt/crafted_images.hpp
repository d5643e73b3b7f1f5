#pragma once

// Hand-made image files for the unit tests: small, valid qcow and qcow2
// headers built byte by byte from the specs (QEMU's block/qcow.c QCowHeader,
// docs/interop/qcow2.txt), which a test then damages in one precise way.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pv::img::test {

// A fresh directory, removed with its contents.
class TempDir {
  public:
    TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir();
    [[nodiscard]] std::string file(const std::string& name) const {
        return (m_path / name).string();
    }

  private:
    std::filesystem::path m_path;
};

void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
void store_be(std::vector<uint8_t>& bytes, size_t offset, uint64_t value, int width);

inline constexpr uint64_t kCraftedSize = 1 << 20;

// qcow version 1: 1 MiB disk, 4 KiB clusters, 512-entry L2 tables, L1 at
// 4096, all clusters unallocated; BACKING, if not empty, recorded at 48.
[[nodiscard]] std::vector<uint8_t> make_qcow1(const std::string& backing = {});

// qcow2 (VERSION 2 or 3): 1 MiB disk, 64 KiB clusters; header, L1 table,
// refcount table and one refcount block in clusters 0-3, nothing allocated;
// BACKING, if not empty, recorded at offset 512 of the header cluster.
[[nodiscard]] std::vector<uint8_t> make_qcow2(uint32_t version = 3,
                                              const std::string& backing = {});

}  // namespace pv::img::test
