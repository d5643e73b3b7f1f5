#pragma once

// patchvisor's image layer as a library (target patchvisor::imgfmt): open a
// raw, qcow or qcow2 disk image, put a qcow2 copy-on-write overlay over it,
// read and write the overlay, and commit it into a new image or atomically
// over the original. The overlay is a real qcow2 v3 file with the original
// as its backing file, so qemu-img and QEMU understand it.
//
// Safety rules (the same as the patchvisor command's):
// - the format is detected by magic for the file opened only; a backing
//   file named inside an image is never followed unless the caller passes
//   Backing::Allow (qcow2 probing attacks, CVE-2010-3851);
// - an opened image is locked by default (an exclusive lock that also
//   conflicts with QEMU's own), so an image a running VM or qemu-io holds
//   is refused, and they cannot open it while the Image lives;
// - a commit writes the new image next to its destination, fsyncs it and
//   renames it into place; on failure the original is untouched.
//
// An Image is used by one thread at a time.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <patchvisor/error.hpp>

namespace patchvisor {

enum class ImageFormat { Raw, Qcow, Qcow2 };
enum class Access { ReadOnly, ReadWrite };
// Whether a backing file named inside an image may be opened.
enum class Backing { Refuse, Allow };
// Whether the Image holds a lock on its file while it lives.
enum class Locking { Exclusive, None };

// "raw", "qcow", "qcow2".
[[nodiscard]] PATCHVISOR_API std::string_view format_name(ImageFormat format);
// The inverse of format_name; anything else is an error naming it.
[[nodiscard]] PATCHVISOR_API Result<ImageFormat> parse_format(std::string_view name);

struct OpenOptions {
    // The format the caller knows; none: detected by the file's magic.
    std::optional<ImageFormat> format{};
    // Raw and qcow2 images open read-write; qcow (version 1) only read-only.
    Access access = Access::ReadOnly;
    Backing backing = Backing::Refuse;
    Locking locking = Locking::Exclusive;
};

// Header facts of an image file, read without opening any backing file.
struct ImageInfo {
    std::string path{};
    ImageFormat format = ImageFormat::Raw;
    uint64_t virtual_size = 0;
    uint64_t file_size = 0;
    uint64_t allocated_bytes = 0;  // blocks the file itself occupies
    uint32_t cluster_size = 0;     // 0 for raw
    uint32_t version = 0;          // qcow/qcow2 header version, 0 for raw
    bool encrypted = false;
    std::optional<std::string> backing_file{};    // as recorded in the header
    std::optional<std::string> backing_format{};  // as recorded in the header
};

// FORMAT: the one the caller knows (a file whose header is not FORMAT's is
// an error), or none to detect it by magic.
[[nodiscard]] PATCHVISOR_API Result<ImageInfo> inspect_image(
    const std::string& path, std::optional<ImageFormat> format = std::nullopt);

struct CommitOptions {
    // Where the merged image goes; none: atomically over the original (the
    // overlay's backing file).
    std::optional<std::string> output{};
    // The merged image's format; none: the original's (raw stays raw, qcow
    // and qcow2 become a compact standalone qcow2).
    std::optional<ImageFormat> format{};
    // When replacing: keep the original as ORIGINAL.pre-patch (a hard link).
    bool keep_backup = false;
    // Called now and then with the bytes done so far and the total.
    std::function<void(uint64_t done, uint64_t total)> progress{};
};

struct CommitResult {
    std::string original{};  // the overlay's backing file
    std::string target{};    // where the merged image is now
    ImageFormat format = ImageFormat::Raw;
    uint64_t virtual_size = 0;
    uint64_t bytes_copied = 0;
    std::optional<std::string> backup{};
};

class PATCHVISOR_API Image {
  public:
    // Opens PATH. A qcow2 image opened ReadWrite is served by patchvisor's
    // own qcow2 code (metadata written in crash-safe order); read-only
    // qcow/qcow2 images are read like `patchvisor img` reads them.
    [[nodiscard]] static Result<Image> open(const std::string& path,
                                            const OpenOptions& options = {});

    // Creates a new qcow2 overlay at PATH (which must not exist) over BASE,
    // recording BASE's absolute path and format in its header. The overlay
    // owns BASE from now on (and its lock, if it holds one: the original
    // cannot change under the overlay); with BASE locked, the overlay file
    // is locked too. Opened read-write.
    [[nodiscard]] static Result<Image> create_overlay(const std::string& path, Image base);

    Image(Image&& other) noexcept;
    Image& operator=(Image&& other) noexcept;
    Image(const Image&) = delete;
    Image& operator=(const Image&) = delete;
    ~Image();

    [[nodiscard]] const std::string& path() const;
    [[nodiscard]] ImageFormat format() const;
    [[nodiscard]] uint64_t size() const;  // virtual size in bytes
    [[nodiscard]] bool read_only() const;
    // A qcow2 image whose backing image is open: what commit() merges.
    [[nodiscard]] bool is_overlay() const;

    // Exactly buffer.size() bytes at OFFSET; a range past size() is an error.
    [[nodiscard]] Result<void> read(uint64_t offset, std::span<std::byte> buffer);
    [[nodiscard]] Result<void> write(uint64_t offset, std::span<const std::byte> data);
    // Afterwards the range reads as zeroes (whole qcow2 clusters become zero
    // clusters, raw files get holes where the filesystem can).
    [[nodiscard]] Result<void> write_zeroes(uint64_t offset, uint64_t length);
    // The range is no longer needed; it reads back unspecified but stable.
    [[nodiscard]] Result<void> discard(uint64_t offset, uint64_t length);
    // Makes every completed write durable (for an overlay, its metadata too).
    [[nodiscard]] Result<void> flush();

    // Merges this overlay and its backing image into a new standalone
    // image, flushed and installed atomically (CommitOptions). Consumes the
    // overlay: after a replacing commit it would describe an image that is
    // gone. The original's lock is held throughout (taken here unless this
    // overlay holds it already).
    [[nodiscard]] Result<CommitResult> commit(const CommitOptions& options = {}) &&;

    struct State;  // opaque: defined inside the library

  private:
    explicit Image(std::unique_ptr<State> state);
    std::unique_ptr<State> m_state;
};

}  // namespace patchvisor
