#include "patcher/repo/apt_source.hpp"

#include <unistd.h>

#include <optional>
#include <set>

#include <fmt/format.h>

#include "patcher/repo/advisories.hpp"
#include "patcher/repo/apt_workspace.hpp"
#include "patcher/repo/changelog.hpp"
#include "patcher/repo/fetch.hpp"
#include "patcher/repo/guest_state.hpp"
#include "patcher/repo/indexes.hpp"
#include "patcher/repo/resolver.hpp"

namespace pv::patcher::repo {

namespace {

std::string os_field(const GuestView& guest, const char* key) {
    auto found = guest.os_release.find(key);
    return found == guest.os_release.end() ? std::string() : found->second;
}

// The changelog fallback: the entries since the installed version, read
// from the verified copy of the new .deb.
Result<std::vector<FixedAdvisory>> changelog_advisories(const PlannedPackage& planned,
                                                        const PackageFile& file) {
    const auto text = PV_TRY(read_deb_changelog(file.path, planned.name));
    if (!text)
        return std::vector<FixedAdvisory>{};
    const auto ids = changelog_ids_since(*text, planned.installed_source_version);
    if (ids.cves.empty() && ids.advisories.empty())
        return std::vector<FixedAdvisory>{};
    const std::string id = ids.advisories.empty()
                               ? "DEB-" + planned.source + "-" + planned.source_version
                               : ids.advisories.front();
    return std::vector<FixedAdvisory>{{id, ids.cves, planned.source_version}};
}

class AptSource final : public PatchSource {
  public:
    AptSource(RepoOptions options, std::string work_dir)
        : m_options(std::move(options)), m_work_dir(std::move(work_dir)) {}

    Result<std::string> load() override {
        for (const auto* file : {&m_options.keyring, &m_options.advisories})
            if (*file && ::access(file->value().c_str(), R_OK) != 0)
                return fail(errno_error("read " + file->value()));
        return fmt::format("repository {}, --upgrade {}", m_options.location,
                           upgrade_mode_name(m_options.upgrade));
    }

    bool uses_guest_files() const override { return true; }

    Result<std::string> prepare(const GuestView& guest) override {
        if (guest.family != PackageFamily::deb)
            return fail(make_error("--repo " + m_options.location,
                                   "a Debian repository, but the guest uses rpm"));
        m_repository = PV_TRY(find_repository(m_options, os_field(guest, "VERSION_CODENAME")));
        m_workspace.emplace(PV_TRY(AptWorkspace::create(m_work_dir)));
        m_state = PV_TRY(copy_guest_state(guest, m_options.keyring, *m_workspace));
        m_state->settings.ignore_valid_until = m_options.ignore_valid_until;
        if (m_state->keyrings.empty())
            return fail(make_error("verify the repository " + m_repository->uri,
                                   "the guest trusts no keyring; give --keyring FILE"));
        PV_TRY(write_sources_list(*m_repository, *m_workspace));
        const auto configured = PV_TRY(configure_apt(*m_workspace, m_state->settings));
        const std::string verified = PV_TRY(fetch_indexes(*m_repository, configured));
        return fmt::format(
            "{} with {} keyring{} ({}){}", verified, m_state->keyrings.size(),
            m_state->keyrings.size() == 1 ? "" : "s",
            m_options.keyring ? "--keyring" : "the guest's",
            m_options.ignore_valid_until ? "; Valid-Until not checked (--ignore-valid-until)" : "");
    }

    Result<Detection> detect(const GuestView& guest) override {
        if (!m_workspace || !m_state || !m_repository)
            return fail(make_error("detect", "the repository was not prepared"));
        Detection detection;
        for (const auto& note : m_state->skipped)
            detection.warnings.push_back("keyring left out: " + note);
        const auto configured = PV_TRY(configure_apt(*m_workspace, m_state->settings));
        auto resolution = PV_TRY(resolve_upgrade(*m_repository, m_options.upgrade, configured));
        const auto database = PV_TRY(load_advisories(resolution, guest));
        for (const auto& planned : resolution.plan)
            detection.patches.push_back(PV_TRY(make_patch(planned, database)));
        detection.kept_back = std::move(resolution.kept_back);
        return detection;
    }

    std::string describe() const override { return "repository " + m_options.location; }

  private:
    Result<std::optional<AdvisoryDatabase>> load_advisories(const Resolution& resolution,
                                                            const GuestView& guest) const {
        if (!m_options.advisories)
            return std::optional<AdvisoryDatabase>();
        std::set<std::string> sources;
        for (const auto& planned : resolution.plan)
            sources.insert(planned.source);
        return std::optional<AdvisoryDatabase>(PV_TRY(AdvisoryDatabase::load(
            *m_options.advisories, sources, os_field(guest, "VERSION_CODENAME"),
            os_field(guest, "VERSION_ID"))));
    }

    Result<Patch> make_patch(const PlannedPackage& planned,
                             const std::optional<AdvisoryDatabase>& database) const {
        Patch patch;
        patch.package = PV_TRY(fetch_verified(planned, m_workspace->debs()));
        patch.installed_version = planned.from_version;
        patch.installed_architecture =
            planned.from_architecture.empty() ? planned.architecture : planned.from_architecture;
        patch.action = planned.action;
        patch.reason = planned.reason;
        if (planned.action != PatchAction::upgrade)
            return patch;  // a new dependency fixes nothing by itself
        if (database)
            patch.advisories = database->fixed_by(
                {planned.source, planned.installed_source_version, planned.source_version});
        if (patch.advisories.empty())
            patch.advisories = PV_TRY(changelog_advisories(planned, patch.package));
        return patch;
    }

    RepoOptions m_options;
    std::string m_work_dir;
    std::optional<Repository> m_repository;
    std::optional<AptWorkspace> m_workspace;
    std::optional<GuestAptState> m_state;
};

}  // namespace

const char* upgrade_mode_name(UpgradeMode mode) {
    return mode == UpgradeMode::security ? "security" : "full";
}

std::unique_ptr<PatchSource> make_apt_source(RepoOptions options, std::string work_dir) {
    return std::make_unique<AptSource>(std::move(options), std::move(work_dir));
}

}  // namespace pv::patcher::repo
