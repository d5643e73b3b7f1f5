#pragma once

// What the --repo tests share: the fixture repositories and images of
// `scripts/images repos` (images/repos/README.md), and the versions their
// package files say of themselves.

#include <string>

#include <nlohmann/json.hpp>

#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {

class RepoFixture {
  public:
    RepoFixture();
    // FIXTURES/NAME (a repository, an image, keys/, advisories/).
    [[nodiscard]] std::string path(const std::string& name) const;
    // Copies the fixture image NAME to TARGET (sparse) and returns TARGET: a job
    // locks and may write its image, so every test works on its own copy.
    std::string copy_image(const std::string& name, const std::string& target) const;
    // `dpkg-deb -f` Version of the one .deb of PACKAGE in repo-good's
    // pool/SUITE/main/PACKAGE/.
    [[nodiscard]] std::string pool_version(const std::string& suite,
                                           const std::string& package) const;

  private:
    std::string m_root;
};

// Runs `patchvisor check|patch IMAGE --repo REPO --work-dir WORK ARGUMENTS
// --json-report REPORT` and returns the output; REPORT holds the JSON.
struct RepoRun {
    CommandOutput result;
    nlohmann::json report;
};
[[nodiscard]] RepoRun run_repo(const std::string& command, const std::string& image,
                               const std::string& repo, const TempDir& dir,
                               const std::string& arguments = "");

// The entry of REPORT["packages"] (or "kept_back") named NAME; null if none.
[[nodiscard]] nlohmann::json entry_named(const nlohmann::json& list, const std::string& name);

}  // namespace pv::test
