#include "tests/e2e/repo/repo_test_support.hpp"

#include <filesystem>

#include <gtest/gtest.h>

namespace pv::test {

RepoFixture::RepoFixture() : m_root(image_artifact("repos")) {}

std::string RepoFixture::path(const std::string& name) const {
    return m_root + "/" + name;
}

std::string RepoFixture::copy_image(const std::string& name, const std::string& target) const {
    must("cp --sparse=always " + quote(path(name)) + " " + quote(target));
    return target;
}

std::string RepoFixture::pool_version(const std::string& suite, const std::string& package) const {
    const auto dir = path("repo-good/pool/" + suite + "/main/" + package);
    const auto read = run("dpkg-deb -f " + dir + "/*.deb Version");
    if (read.exit_code != 0 || read.output.empty()) {
        ADD_FAILURE() << "no .deb of " << package << " in " << dir << ":\n" << read.output;
        return "(none)";
    }
    return read.output.substr(0, read.output.find('\n'));
}

RepoRun run_repo(const std::string& command, const std::string& image, const std::string& repo,
                 const TempDir& dir, const std::string& arguments) {
    const auto report = dir.file("report.json");
    std::filesystem::remove(report);
    RepoRun outcome;
    outcome.result =
        patchvisor(command + " " + quote(image) + " --repo " + quote(repo) + " --work-dir " +
                   quote(dir.file("work")) + " --json-report " + quote(report) + " " + arguments);
    const auto text = run("cat " + quote(report) + " 2>/dev/null");
    if (text.exit_code == 0 && !text.output.empty())
        outcome.report = nlohmann::json::parse(text.output, nullptr, false);
    return outcome;
}

nlohmann::json entry_named(const nlohmann::json& list, const std::string& name) {
    if (list.is_array())
        for (const auto& entry : list)
            if (entry.value("name", "") == name)
                return entry;
    return nullptr;
}

}  // namespace pv::test
