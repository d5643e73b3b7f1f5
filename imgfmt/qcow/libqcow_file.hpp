#pragma once

// The only place that talks to libqcow (libyal, Debian libqcow-dev
// 20201213): one open libqcow file, its errors turned into
// pv::Error values carrying libqcow's message and the image path.
//
// QcowImage asks it for compressed clusters only, and only after
// ClusterMap::open has checked every L1 and L2 entry of the image against
// what libqcow assumes (see cluster_map.hpp): on unchecked tables libqcow
// 20201213 reads past its own buffers (tests/fuzz/corpus/qcow_image/
// crash-libqcow-*).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/error.hpp"

namespace pv::img::qcow {

class LibqcowFile {
  public:
    // Opens PATH read-only with libqcow. An image that names a backing file
    // gets a second handle on itself as libqcow's parent: libqcow refuses
    // every read of such an image until a parent is set, even of clusters
    // stored in the image, and compressed clusters never fall through to
    // the parent.
    [[nodiscard]] static Result<std::unique_ptr<LibqcowFile>> open(const std::string& path);

    LibqcowFile(const LibqcowFile&) = delete;
    LibqcowFile& operator=(const LibqcowFile&) = delete;
    ~LibqcowFile();

    // Reads BUFFER from guest offset OFFSET (all of it, or an error).
    [[nodiscard]] Result<void> read_at(std::span<std::byte> buffer, uint64_t offset);

  private:
    class Handle;
    LibqcowFile(std::unique_ptr<Handle> parent, std::unique_ptr<Handle> file, std::string path);

    // Declared first: libqcow may still point at the parent until the file
    // handle is closed, so the parent is destroyed last.
    std::unique_ptr<Handle> m_parent;
    std::unique_ptr<Handle> m_file;
    std::string m_path;
};

}  // namespace pv::img::qcow
