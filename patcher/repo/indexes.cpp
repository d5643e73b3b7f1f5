#include "patcher/repo/indexes.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "patcher/repo/apt_headers.hpp"

namespace pv::patcher::repo {

namespace {

// No output, no questions: a file: repository never asks for a medium.
class QuietStatus final : public pkgAcquireStatus {
  public:
    bool MediaChange(std::string /*media*/, std::string /*drive*/) override { return false; }
};

bool is_directory(const std::string& path) {
    struct stat status {};
    return ::stat(path.c_str(), &status) == 0 && S_ISDIR(status.st_mode);
}

bool has_release(const std::string& root, const std::string& suite) {
    const std::string dir = root + "/dists/" + suite;
    return RealFileExists(dir + "/InRelease") || RealFileExists(dir + "/Release");
}

}  // namespace

Result<std::string> repository_directory(const std::string& location) {
    std::string path = location;
    if (location.starts_with("file:")) {
        URI uri(location);
        if (uri.Access != "file" || !uri.Host.empty())
            return fail(make_error("--repo " + location,
                                   "only local file: URIs (file:/path or file:///path) are read"));
        path = DeQuoteString(uri.Path);
    }
    if (path.empty())
        return fail(make_error("--repo", "empty location"));
    std::error_code error;
    const auto absolute = std::filesystem::canonical(path, error);
    if (error)
        return fail(make_error("--repo " + location, error.message()));
    return absolute.string();
}

namespace {

Result<std::string> root_of(const std::string& location) {
    const auto absolute = PV_TRY(repository_directory(location));
    if (!is_directory(absolute + "/dists"))
        return fail(
            make_error("--repo " + location,
                       "no dists/ directory (Debian) and no repodata/repomd.xml (rpm-md): not a "
                       "repository"));
    return absolute;
}

std::vector<std::string> suites_present(const std::string& root) {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(root + "/dists", error))
        if (has_release(root, entry.path().filename().string()))
            names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

Result<std::vector<std::string>> choose_suites(const std::string& root,
                                               const std::vector<std::string>& wanted,
                                               const std::string& codename) {
    const auto present = suites_present(root);
    const std::string listing =
        present.empty() ? "none" : fmt::format("{}", fmt::join(present, ", "));
    if (!wanted.empty()) {
        for (const auto& suite : wanted)
            if (suite.find('/') != std::string::npos || !has_release(root, suite))
                return fail(make_error("--suite " + suite,
                                       "the repository has no dists/" + suite +
                                           "/InRelease or Release (it has: " + listing + ")"));
        return wanted;
    }
    if (codename.empty())
        return fail(make_error("choose the suites",
                               "the guest's os-release has no VERSION_CODENAME; give --suite"));
    std::vector<std::string> chosen;
    for (const auto& suite : {codename, codename + "-updates", codename + "-security"})
        if (has_release(root, suite))
            chosen.push_back(suite);
    if (chosen.empty())
        return fail(make_error("choose the suites",
                               fmt::format("the repository has no {0}, {0}-updates or {0}-security "
                                           "for this guest (it has: {1}); give --suite",
                                           codename, listing)));
    return chosen;
}

// The Components field of the suite's Release, before its signature is
// checked: it only names the indexes to fetch.
Result<std::vector<std::string>> release_components(const std::string& root,
                                                    const std::string& suite) {
    const std::string dir = root + "/dists/" + suite;
    const std::string file =
        RealFileExists(dir + "/InRelease") ? dir + "/InRelease" : dir + "/Release";
    FileFd fd;
    if (!OpenMaybeClearSignedFile(file, fd))
        return fail(make_error("read " + file, apt_failure_reason()));
    pkgTagFile tags(&fd);
    pkgTagSection section;
    if (!tags.Step(section))
        return fail(make_error("read " + file, "no fields"));
    std::vector<std::string> components = VectorizeString(section.FindS("Components"), ' ');
    components.erase(std::remove(components.begin(), components.end(), ""), components.end());
    if (components.empty())
        return fail(make_error("read " + file, "no Components field; give --component"));
    return components;
}

// Loads the Release that apt verified and stored in the lists directory
// into META, so that its entries can be asked for.
Result<void> load_fetched_release(metaIndex& meta, const std::string& what) {
    const std::string lists = _config->FindDir("Dir::State::lists");
    const std::string base = meta.GetURI() + "dists/" + meta.GetDist() + "/";
    for (const char* name : {"InRelease", "Release"}) {
        const std::string file = lists + URItoFileName(base + name);
        if (!RealFileExists(file))
            continue;
        std::string error;
        if (!meta.Load(file, &error))
            return fail(make_error(what, error.empty() ? apt_failure_reason() : error));
        return {};
    }
    return fail(make_error(what, meta.GetDist() + ": no verified Release in the lists"));
}

}  // namespace

Result<Repository> find_repository(const RepoOptions& options, const std::string& codename) {
    Repository repository;
    repository.root = PV_TRY(root_of(options.location));
    repository.uri = "file:" + QuoteString(repository.root, " []\"%");
    for (const auto& suite : PV_TRY(choose_suites(repository.root, options.suites, codename))) {
        auto components = options.components;
        if (components.empty())
            components = PV_TRY(release_components(repository.root, suite));
        repository.suites.emplace_back(suite, std::move(components));
    }
    return repository;
}

Result<void> write_sources_list(const Repository& repository, const AptWorkspace& workspace) {
    std::string text;
    for (const auto& [suite, components] : repository.suites)
        text += fmt::format("deb {} {} {}\n", repository.uri, suite, fmt::join(components, " "));
    return write_file(workspace.etc() + "/sources.list", text);
}

Result<std::string> fetch_indexes(const Repository& repository,
                                  const AptConfigured& /*configured*/) {
    const std::string what = "verify the repository " + repository.uri;
    pkgSourceList sources;
    if (!sources.ReadMainList())
        return fail(make_error(what, apt_failure_reason()));
    QuietStatus status;
    pkgAcquire fetcher(&status);
    if (!fetcher.GetLock(_config->FindDir("Dir::State::Lists")) ||
        !sources.GetIndexes(&fetcher, false))
        return fail(make_error(what, apt_failure_reason()));
    // No update hooks, old lists cleaned (there are none).
    const bool fetched = AcquireUpdate(fetcher, 0, false, true);
    const std::string problems = take_apt_problems();
    if (!fetched || !problems.empty())
        return fail(make_error(what, problems.empty() ? "libapt-pkg gave no reason" : problems));
    // apt said nothing wrong; still, every suite must be trusted (signed
    // and verified) and every index its Release lists must be there.
    size_t indexes = 0;
    for (auto* meta : sources) {
        if (!meta->IsTrusted())
            return fail(make_error(what, meta->GetDist() + " is not signed by a trusted key"));
        PV_TRY(load_fetched_release(*meta, what));
        for (const auto& target : meta->GetIndexTargets()) {
            if (!meta->Exists(target.MetaKey))
                continue;  // e.g. binary-all, which a Release may list as an architecture only
            if (target.Option(IndexTarget::EXISTING_FILENAME).empty())
                return fail(make_error(what, target.Description + " was not fetched"));
            ++indexes;
        }
    }
    std::vector<std::string> suites;
    for (const auto& suite : repository.suites)
        suites.push_back(suite.first);
    return fmt::format("{} {}: signatures and {} index hashes verified", repository.uri,
                       fmt::join(suites, ", "), indexes);
}

}  // namespace pv::patcher::repo
