#include "patcher/sandbox/runtime_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <utility>

namespace pv::sandbox {

namespace {

// Numbers the sandboxes of this process; the pid keeps tags unique between
// processes.
std::atomic<unsigned> g_next_sandbox{0};

Result<void> make_directory(const std::string& path, bool may_exist) {
    if (::mkdir(path.c_str(), 0700) == 0)
        return {};
    if (errno == EEXIST && may_exist)
        return {};
    return fail(errno_error("create directory " + path));
}

Result<void> remove_entry(const std::string& path, bool directory) {
    const int result = directory ? ::rmdir(path.c_str()) : ::unlink(path.c_str());
    if (result == 0 || errno == ENOENT)
        return {};
    return fail(errno_error("remove " + path));
}

}  // namespace

Result<RuntimeDir> RuntimeDir::create(const std::string& root) {
    // The parent of the root (/run) is expected to exist; only the last
    // level is created so a typo does not grow a tree.
    PV_TRY(make_directory(root, true));
    const std::string tag =
        std::to_string(::getpid()) + "-" + std::to_string(g_next_sandbox.fetch_add(1));
    const std::string path = root + "/" + tag;
    PV_TRY(make_directory(path, false));
    RuntimeDir dir(path, tag);
    PV_TRY(make_directory(dir.export_dir(), false));
    return dir;
}

RuntimeDir::RuntimeDir(RuntimeDir&& other) noexcept
    : m_path(std::exchange(other.m_path, {})), m_tag(std::exchange(other.m_tag, {})) {}

RuntimeDir::~RuntimeDir() {
    (void)remove();
}

Result<void> RuntimeDir::remove() {
    if (m_path.empty())
        return {};
    PV_TRY(remove_entry(socket_path(), false));
    PV_TRY(remove_entry(export_dir(), true));
    PV_TRY(remove_entry(m_path, true));
    m_path.clear();
    return {};
}

}  // namespace pv::sandbox
