#pragma once

// `--repo` for RPM guests: an rpm-md repository as a patch source
// (patch_source.hpp). prepare() reads the guest's rpmdb and keys
// (/etc/pki/rpm-gpg, or --keyring) and verifies the repository
// (rpmmd_repository.hpp); detect() resolves the update with libsolv
// (rpmmd_resolver.hpp) and copies and checks each planned .rpm (fetch.hpp);
// what each update fixes comes from the repository's updateinfo.xml.

#include <memory>
#include <string>

#include "patcher/detect/patch_source.hpp"
#include "patcher/repo/repo_options.hpp"

namespace pv::patcher::repo {

// ROOT: the repository's directory (repository_directory()); WORK_DIR holds
// the keyring and the checked copies of the packages.
[[nodiscard]] std::unique_ptr<PatchSource> make_rpmmd_source(RepoOptions options, std::string root,
                                                             std::string work_dir);

}  // namespace pv::patcher::repo
