#include "guestfs/ext/ext_filesystem.hpp"

#include <ext2fs/ext2fs.h>

// com_err.h declares its functions without C linkage for C++.
extern "C" {
#include <et/com_err.h>
}

#include <algorithm>
#include <mutex>

#include "guestfs/ext/block_channel.hpp"

namespace pv::guestfs {

struct ExtFilesystem::State {
    // The window is what the channel's name points at (block_channel.hpp),
    // so it lives here, at a fixed address, as long as the filesystem.
    detail::DiskWindow window;
    std::string description;
    ext2_filsys fs = nullptr;

    ~State() {
        if (fs != nullptr)
            ext2fs_close_free(&fs);
    }
};

namespace {

// libext2fs's message for CODE, and the block device's when a read failed.
Error ext_error(ExtFilesystem::State& state, const std::string& operation, errcode_t code) {
    std::string detail = error_message(code);
    if (!state.window.last_error.empty())
        detail += " (" + state.window.last_error + ")";
    state.window.last_error.clear();
    return make_error(operation + " on " + state.description, detail);
}

Result<void> check_mountable_as_is(ExtFilesystem::State& state, uint64_t length) {
    ext2_super_block& super = *state.fs->super;
    const std::string what = "read the ext2/3/4 filesystem on " + state.description;
    // The kernel replays such a journal on mount, changing files this read
    // would not see.
    if (ext2fs_has_feature_journal_needs_recovery(&super))
        return fail(make_error(what, "its journal needs recovery (it was not cleanly unmounted)"));
    if ((super.s_state & EXT2_ERROR_FS) != 0)
        return fail(make_error(what, "it records errors that e2fsck has not repaired"));
    const uint64_t block_size = static_cast<uint64_t>(state.fs->blocksize);
    const uint64_t blocks = ext2fs_blocks_count(&super);
    if (blocks > length / block_size)
        return fail(make_error(what, "it claims " + std::to_string(blocks) + " blocks of " +
                                         std::to_string(block_size) + " bytes, but only " +
                                         std::to_string(length) +
                                         " bytes are there (a truncated image?)"));
    return {};
}

// The inode PATH names; a final symlink is followed only with FOLLOW.
Result<ext2_ino_t> look_up(ExtFilesystem::State& state, const std::string& path, bool follow,
                           bool& missing) {
    missing = false;
    if (path.empty() || path.front() != '/')
        return fail(make_error("look up " + path, "not an absolute path"));
    ext2_ino_t inode = 0;
    const errcode_t code =
        follow ? ext2fs_namei_follow(state.fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path.c_str(), &inode)
               : ext2fs_namei(state.fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path.c_str(), &inode);
    if (code == EXT2_ET_FILE_NOT_FOUND || code == EXT2_ET_NO_DIRECTORY) {
        missing = true;
        state.window.last_error.clear();
        return fail(make_error("read " + path + " on " + state.description, "no such file"));
    }
    if (code != 0)
        return fail(ext_error(state, "look up " + path, code));
    return inode;
}

// An open ext2 file, closed however the read ends.
class OpenFile {
  public:
    explicit OpenFile(ext2_file_t file) : m_file(file) {}
    OpenFile(const OpenFile&) = delete;
    OpenFile& operator=(const OpenFile&) = delete;
    ~OpenFile() { ext2fs_file_close(m_file); }
    [[nodiscard]] ext2_file_t get() const { return m_file; }

  private:
    ext2_file_t m_file;
};

struct Listing {
    std::vector<std::string> names;
    size_t limit = 0;
    bool over_limit = false;
};

int collect_name(ext2_dir_entry* entry, int /*offset*/, int /*block_size*/, char* /*buffer*/,
                 void* data) {
    auto& listing = *static_cast<Listing*>(data);
    const std::string name(entry->name, static_cast<size_t>(ext2fs_dirent_name_len(entry)));
    if (name == "." || name == "..")
        return 0;
    if (listing.names.size() >= listing.limit) {
        listing.over_limit = true;
        return DIRENT_ABORT;
    }
    listing.names.push_back(name);
    return 0;
}

}  // namespace

void ExtFilesystem::load_error_messages() {
    static std::once_flag once;
    std::call_once(once, [] { initialize_ext2_error_table(); });
}

Result<std::unique_ptr<ExtFilesystem>> ExtFilesystem::open(img::BlockDevice& disk, uint64_t offset,
                                                           uint64_t length,
                                                           std::string description) {
    load_error_messages();
    if (offset > disk.size() || length > disk.size() - offset)
        return fail(make_error("open the ext2/3/4 filesystem on " + description,
                               "its extent lies outside the disk"));
    auto state = std::make_unique<State>();
    state->window.disk = &disk;
    state->window.offset = offset;
    state->window.length = length;
    state->description = std::move(description);
    const std::string name = detail::channel_name(state->window);
    // Read-only (no EXT2_FLAG_RW); 64-bit block numbers; checksum errors
    // stay errors.
    const errcode_t code = ext2fs_open2(name.c_str(), nullptr, EXT2_FLAG_64BITS, 0, 0,
                                        detail::block_io_manager(), &state->fs);
    if (code != 0) {
        state->fs = nullptr;
        return fail(ext_error(*state, "open the ext2/3/4 filesystem", code));
    }
    PV_TRY(check_mountable_as_is(*state, length));
    return std::unique_ptr<ExtFilesystem>(new ExtFilesystem(std::move(state)));
}

ExtFilesystem::ExtFilesystem(std::unique_ptr<State> state) : m_state(std::move(state)) {}

ExtFilesystem::~ExtFilesystem() = default;

const std::string& ExtFilesystem::describe() const {
    return m_state->description;
}

Result<bool> ExtFilesystem::exists(const std::string& path) {
    bool missing = false;
    auto inode = look_up(*m_state, path, false, missing);
    if (!inode && missing)
        return false;
    PV_TRY(std::move(inode));
    return true;
}

Result<std::string> ExtFilesystem::read_file(const std::string& path, size_t limit) {
    bool missing = false;
    const ext2_ino_t inode_number = PV_TRY(look_up(*m_state, path, true, missing));
    const std::string what = "read " + path;
    ext2_inode inode{};
    if (errcode_t code = ext2fs_read_inode(m_state->fs, inode_number, &inode))
        return fail(ext_error(*m_state, what, code));
    if (!LINUX_S_ISREG(inode.i_mode))
        return fail(make_error(what + " on " + m_state->description, "not a regular file"));
    const uint64_t size = EXT2_I_SIZE(&inode);
    if (size > limit)
        return fail(make_error(
            what + " on " + m_state->description,
            std::to_string(size) + " bytes is over the limit of " + std::to_string(limit)));
    ext2_file_t handle = nullptr;
    if (errcode_t code = ext2fs_file_open(m_state->fs, inode_number, 0, &handle))
        return fail(ext_error(*m_state, what, code));
    const OpenFile file(handle);
    std::string text(size, '\0');
    uint64_t done = 0;
    while (done < size) {
        const auto chunk = static_cast<unsigned int>(std::min<uint64_t>(size - done, 1 << 20));
        unsigned int got = 0;
        if (errcode_t code = ext2fs_file_read(file.get(), text.data() + done, chunk, &got))
            return fail(ext_error(*m_state, what, code));
        if (got == 0)
            return fail(make_error(what + " on " + m_state->description,
                                   "the file ended after " + std::to_string(done) + " of its " +
                                       std::to_string(size) + " bytes"));
        done += got;
    }
    return text;
}

Result<std::vector<std::string>> ExtFilesystem::list_directory(const std::string& path,
                                                               size_t limit) {
    bool missing = false;
    const ext2_ino_t inode = PV_TRY(look_up(*m_state, path, true, missing));
    const std::string what = "list " + path;
    if (errcode_t code = ext2fs_check_directory(m_state->fs, inode))
        return fail(ext_error(*m_state, what, code));
    Listing listing;
    listing.limit = limit;
    // Flags 0 lists inline-data directories too; DIRENT_FLAG_INCLUDE_INLINE_DATA
    // makes libext2fs 1.47 report an ordinary directory block as corrupted.
    const errcode_t code =
        ext2fs_dir_iterate(m_state->fs, inode, 0, nullptr, collect_name, &listing);
    if (listing.over_limit)
        return fail(make_error(what + " on " + m_state->description,
                               "more than " + std::to_string(limit) + " entries"));
    if (code != 0)
        return fail(ext_error(*m_state, what, code));
    return std::move(listing.names);
}

}  // namespace pv::guestfs
