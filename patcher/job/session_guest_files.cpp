#include "patcher/job/session_guest_files.hpp"

namespace pv::patcher {

Result<std::optional<std::string>> SessionGuestFiles::read(const std::string& path,
                                                           uint64_t limit) {
    auto data = PV_TRY(m_session.read_file(path, limit));
    switch (data.kind()) {
        case wire::FileData::KIND_MISSING:
            return std::optional<std::string>();
        case wire::FileData::KIND_FILE:
            return std::optional<std::string>(std::move(*data.mutable_data()));
        default:
            return fail(make_error("read " + path + " in the guest", "not a regular file"));
    }
}

Result<std::vector<std::string>> SessionGuestFiles::list(const std::string& path) {
    const auto data = PV_TRY(m_session.read_file(path, 0));
    switch (data.kind()) {
        case wire::FileData::KIND_MISSING:
            return std::vector<std::string>();
        case wire::FileData::KIND_DIRECTORY:
            return std::vector<std::string>(data.entries().begin(), data.entries().end());
        default:
            return fail(make_error("list " + path + " in the guest", "not a directory"));
    }
}

}  // namespace pv::patcher
