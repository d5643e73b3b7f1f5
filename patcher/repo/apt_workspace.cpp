#include "patcher/repo/apt_workspace.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "common/fd.hpp"
#include "patcher/detect/library_setup.hpp"
#include "patcher/repo/apt_headers.hpp"

namespace pv::patcher::repo {

namespace {

const char* const kSubdirectories[] = {"etc",
                                       "etc/trusted.gpg.d",
                                       "etc/preferences.d",
                                       "etc/sources.list.d",
                                       "lists/partial",
                                       "cache",
                                       "cache/archives/partial",
                                       "state",
                                       "log",
                                       "debs"};

void set_directories(const AptWorkspace& workspace) {
    const std::string& root = workspace.root();
    _config->Set("Dir", "/");
    _config->Set("Dir::State", root + "/state/");
    _config->Set("Dir::State::lists", workspace.lists() + "/");
    _config->Set("Dir::State::status", workspace.status_file());
    _config->Set("Dir::State::extended_states", root + "/state/extended_states");
    _config->Set("Dir::Cache", root + "/cache/");
    _config->Set("Dir::Cache::archives", root + "/cache/archives/");
    // Empty: the cache is built in memory, never written to a file.
    _config->Set("Dir::Cache::pkgcache", "");
    _config->Set("Dir::Cache::srcpkgcache", "");
    _config->Set("Dir::Etc", workspace.etc() + "/");
    _config->Set("Dir::Etc::sourcelist", "sources.list");
    _config->Set("Dir::Etc::sourceparts", "sources.list.d");
    _config->Set("Dir::Etc::preferences", "preferences");
    _config->Set("Dir::Etc::preferencesparts", "preferences.d");
    _config->Set("Dir::Etc::trusted", "trusted.gpg");
    _config->Set("Dir::Etc::trustedparts", "trusted.gpg.d");
    _config->Set("Dir::Etc::netrc", "auth.conf");
    _config->Set("Dir::Etc::netrcparts", "auth.conf.d");
    _config->Set("Dir::Log", root + "/log/");
}

// Every option that decides what is trusted, set whatever the defaults or
// APT_CONFIG said.
void set_trust(const AptSettings& settings) {
    _config->Set("Acquire::Check-Valid-Until", !settings.ignore_valid_until);
    _config->Set("Acquire::Check-Date", true);
    _config->Clear("Acquire::Max-ValidTime");
    _config->Clear("Acquire::Min-ValidTime");
    _config->Set("Acquire::AllowInsecureRepositories", false);
    _config->Set("Acquire::AllowWeakRepositories", false);
    _config->Set("Acquire::AllowDowngradeToInsecureRepositories", false);
    _config->Set("APT::Get::AllowUnauthenticated", false);
    _config->Clear("Acquire::gpgv::Options");
}

void set_behaviour(const AptSettings& settings) {
    _config->Set("APT::System", "Debian dpkg interface");
    _config->Set("APT::Architecture", settings.native_architecture);
    _config->Clear("APT::Architectures");
    _config->Set("APT::Architectures::", settings.native_architecture);
    for (const auto& architecture : settings.foreign_architectures)
        _config->Set("APT::Architectures::", architecture);
    // A security patch brings what the new versions depend on, nothing more.
    _config->Set("APT::Install-Recommends", false);
    _config->Set("APT::Install-Suggests", false);
    _config->Set("APT::Ignore-Hold", false);
    _config->Set("Acquire::Languages", "none");
    _config->Set("Acquire::GzipIndexes", false);
    _config->Set("Acquire::PDiffs", false);
    _config->Set("Acquire::Retries", 0);
    // apt's methods run as root: with apt 2.6 the store method, dropped to
    // _apt, cannot open what the file method wrote as root when the
    // repository is not readable by _apt (a directory under /root, say).
    // What they parse before gpgv has checked it is the InRelease file.
    _config->Set("APT::Sandbox::User", "root");
    // Nothing of the host's: no update hooks, no per-method overrides.
    _config->Clear("APT::Update");
    _config->Clear("Binary");
    _config->Clear("Debug");
}

}  // namespace

Result<AptWorkspace> AptWorkspace::create(const std::string& work_dir) {
    std::error_code error;
    std::filesystem::create_directories(work_dir, error);
    if (error)
        return fail(make_error("create the work directory " + work_dir, error.message()));
    std::string pattern =
        std::filesystem::absolute(work_dir).lexically_normal().string() + "/repo-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
        return fail(errno_error("create a directory in " + work_dir));
    AptWorkspace workspace(pattern);
    if (::chmod(pattern.c_str(), 0755) != 0)
        return fail(errno_error("chmod " + pattern));
    for (const char* name : kSubdirectories) {
        std::filesystem::create_directories(pattern + "/" + name, error);
        if (error)
            return fail(make_error("create " + pattern + "/" + name, error.message()));
    }
    PV_TRY(write_file(workspace.etc() + "/sources.list", ""));
    return workspace;
}

AptWorkspace::~AptWorkspace() {
    if (m_root.empty())
        return;
    std::error_code ignored;
    std::filesystem::remove_all(m_root, ignored);
}

Result<void> write_file(const std::string& path, const std::string& data) {
    const Fd fd = PV_TRY(Fd::open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    size_t written = 0;
    while (written < data.size()) {
        const ssize_t n = ::write(fd.get(), data.data() + written, data.size() - written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(errno_error("write " + path));
        written += static_cast<size_t>(n);
    }
    return {};
}

std::string take_apt_problems() {
    std::ostringstream text;
    // DumpErrors writes "E: ..." and "W: ..." lines, the way apt-get shows
    // them, and clears the stack; notices stay below the threshold.
    _error->DumpErrors(text, GlobalError::WARNING, true);
    _error->Discard();
    std::string problems = text.str();
    while (!problems.empty() && problems.back() == '\n')
        problems.pop_back();
    return problems;
}

std::string apt_failure_reason() {
    std::string problems = take_apt_problems();
    return problems.empty() ? "libapt-pkg gave no reason" : problems;
}

AptConfigured::~AptConfigured() = default;

Result<AptConfigured> configure_apt(const AptWorkspace& workspace, const AptSettings& settings) {
    PV_TRY(detail::ensure_apt_ready());
    AptConfigured configured(std::unique_lock(detail::apt_state_mutex()));
    _error->Discard();
    set_directories(workspace);
    set_trust(settings);
    set_behaviour(settings);
    // libapt-pkg caches these lists in statics on first use; recompute them
    // for this configuration.
    (void)APT::Configuration::getArchitectures(false);
    (void)APT::Configuration::getLanguages(false, false);
    (void)APT::Configuration::getLanguages(true, false);
    (void)APT::Configuration::getCompressionTypes(false);
    if (!pkgInitSystem(*_config, _system) || _system == nullptr)
        return fail(make_error("initialise libapt-pkg's dpkg system", detail::take_apt_errors()));
    return configured;
}

}  // namespace pv::patcher::repo
