#pragma once

// `--repo`: a Debian-style repository as a patch source (patch_source.hpp),
// resolved against the guest by libapt-pkg. prepare() reads the guest's
// apt state (guest_state.hpp) and fetches and verifies the indexes
// (indexes.hpp); detect() resolves the upgrade (resolver.hpp), copies and
// checks each planned .deb (fetch.hpp) and names what each update fixes
// (advisories.hpp, else changelog.hpp).

#include <memory>
#include <string>

#include "patcher/detect/patch_source.hpp"
#include "patcher/repo/repo_options.hpp"

namespace pv::patcher::repo {

// WORK_DIR holds the resolution's private apt root while the source lives.
[[nodiscard]] std::unique_ptr<PatchSource> make_apt_source(RepoOptions options,
                                                           std::string work_dir);

}  // namespace pv::patcher::repo
