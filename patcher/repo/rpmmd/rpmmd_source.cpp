#include "patcher/repo/rpmmd/rpmmd_source.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "guestfs/rpm/rpm_database.hpp"
#include "patcher/repo/fetch.hpp"
#include "patcher/repo/rpmmd/rpmmd_repository.hpp"
#include "patcher/repo/rpmmd/rpmmd_resolver.hpp"

namespace pv::patcher::repo {

namespace {

// Where RPM distributions keep the keys their repositories are signed with.
constexpr const char* kGuestKeyDir = "/etc/pki/rpm-gpg";
constexpr uint64_t kMaxKeyBytes = 1u << 20;

Result<std::string> read_host_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return fail(errno_error("read " + path));
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

class RpmMdSource final : public PatchSource {
  public:
    RpmMdSource(RepoOptions options, std::string root, std::string work_dir)
        : m_options(std::move(options)), m_root(std::move(root)), m_work_dir(std::move(work_dir)) {}

    Result<std::string> load() override {
        const std::string where = "--repo " + m_options.location;
        if (!m_options.suites.empty() || !m_options.components.empty())
            return fail(make_error(where,
                                   "an rpm-md repository has no suites or components "
                                   "(--suite and --component are for Debian repositories)"));
        if (m_options.advisories)
            return fail(make_error(where,
                                   "an rpm-md repository's advisories come from its own "
                                   "updateinfo.xml (--advisories is for Debian repositories)"));
        if (m_options.keyring && ::access(m_options.keyring->c_str(), R_OK) != 0)
            return fail(errno_error("read " + *m_options.keyring));
        return fmt::format("rpm-md repository {}, --upgrade {}", m_options.location,
                           upgrade_mode_name(m_options.upgrade));
    }

    bool uses_guest_files() const override { return true; }

    Result<std::string> prepare(const GuestView& guest) override {
        if (guest.family != PackageFamily::rpm)
            return fail(make_error("--repo " + m_options.location,
                                   "an rpm-md repository, but the guest uses dpkg"));
        m_rpmdb = PV_TRY(read_rpmdb(guest.files));
        const auto keys = PV_TRY(read_keys(guest.files));
        m_scratch = PV_TRY(make_scratch());
        m_repository = PV_TRY(open_rpmmd_repository(m_root, keys, m_scratch));
        return fmt::format(
            "repomd.xml signed by {} ({} key{} from {}), primary{} checked", m_repository->signer,
            keys.size(), keys.size() == 1 ? "" : "s",
            m_options.keyring ? "--keyring" : std::string("the guest's ") + kGuestKeyDir,
            m_repository->updateinfo ? " and updateinfo" : "");
    }

    Result<Detection> detect(const GuestView&) override {
        if (!m_repository)
            return fail(make_error("detect", "the repository was not prepared"));
        auto resolved = PV_TRY(resolve_rpm_upgrade(*m_repository, m_rpmdb, m_options.upgrade));
        Detection detection;
        for (const auto& planned : resolved.resolution.plan) {
            Patch patch;
            patch.package = PV_TRY(fetch_verified(planned, packages_dir()));
            patch.installed_version = planned.from_version;
            patch.installed_architecture = planned.from_architecture.empty()
                                               ? planned.architecture
                                               : planned.from_architecture;
            patch.action = planned.action;
            patch.reason = planned.reason;
            patch.advisories = std::move(resolved.advisories[planned.name]);
            detection.patches.push_back(std::move(patch));
        }
        detection.kept_back = std::move(resolved.resolution.kept_back);
        return detection;
    }

    std::string describe() const override { return "repository " + m_options.location; }

  private:
    std::string packages_dir() const { return m_scratch + "/rpms"; }

    // A directory of this job's own in the work directory.
    Result<std::string> make_scratch() const {
        std::error_code error;
        std::filesystem::create_directories(m_work_dir, error);
        if (error)
            return fail(make_error("create the work directory " + m_work_dir, error.message()));
        std::string pattern =
            std::filesystem::absolute(m_work_dir).lexically_normal().string() + "/rpmmd-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr)
            return fail(errno_error("create a directory in " + m_work_dir));
        std::filesystem::create_directories(pattern + "/rpms", error);
        if (error)
            return fail(make_error("create " + pattern + "/rpms", error.message()));
        return pattern;
    }

    // The guest's rpmdb.sqlite, as the host's own reader finds it.
    Result<std::string> read_rpmdb(GuestFiles& files) const {
        for (const std::string directory : guestfs::kRpmDatabaseDirs) {
            const std::string path = directory + "/" + guestfs::kRpmDatabaseFile;
            auto bytes = PV_TRY(files.read(path, guestfs::kMaxRpmDatabaseBytes));
            if (!bytes)
                continue;
            const auto log = PV_TRY(files.read(path + "-wal", guestfs::kMaxRpmDatabaseBytes));
            if (log && !log->empty())
                return fail(make_error("read the guest's " + path,
                                       "rpm left a write-ahead log it has not folded in"));
            return std::move(*bytes);
        }
        return fail(
            make_error("read the guest's rpm database",
                       fmt::format("there is no {} in {} or {}", guestfs::kRpmDatabaseFile,
                                   guestfs::kRpmDatabaseDirs[0], guestfs::kRpmDatabaseDirs[1])));
    }

    Result<std::vector<RpmKey>> read_keys(GuestFiles& files) const {
        if (m_options.keyring)
            return std::vector<RpmKey>{
                {*m_options.keyring, PV_TRY(read_host_file(*m_options.keyring))}};
        std::vector<RpmKey> keys;
        for (const auto& name : PV_TRY(files.list(kGuestKeyDir))) {
            const std::string path = std::string(kGuestKeyDir) + "/" + name;
            // Not a regular file (or too large): not a key, and not trusted.
            auto bytes = files.read(path, kMaxKeyBytes);
            if (bytes && *bytes)
                keys.push_back({"the guest's " + path, std::move(**bytes)});
        }
        return keys;
    }

    RepoOptions m_options;
    std::string m_root;
    std::string m_work_dir;
    std::string m_scratch;
    std::string m_rpmdb;
    std::optional<RpmMdRepository> m_repository;
};

}  // namespace

std::unique_ptr<PatchSource> make_rpmmd_source(RepoOptions options, std::string root,
                                               std::string work_dir) {
    return std::make_unique<RpmMdSource>(std::move(options), std::move(root), std::move(work_dir));
}

}  // namespace pv::patcher::repo
