#pragma once

// What the resolver takes from the guest (read through GuestFiles, never
// from the host's own /etc/apt or /var/lib/dpkg): the dpkg status file
// (installed versions, dependencies, holds), its foreign architectures,
// apt's preferences (pins), and the keyrings apt trusts there. Written into
// an AptWorkspace, where libapt-pkg reads them as the guest's apt would.

#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "patcher/detect/guest_files.hpp"
#include "patcher/detect/patch_source.hpp"
#include "patcher/repo/apt_workspace.hpp"

namespace pv::patcher::repo {

struct GuestAptState {
    AptSettings settings;
    size_t preference_files = 0;
    std::vector<std::string> keyrings;  // guest paths (or the --keyring file)
    std::vector<std::string> skipped;   // files left out, with the reason
};

// Copies the guest's state into WORKSPACE. KEYRING, when given, is a host
// file that replaces the guest's keyrings as the only one trusted.
// Keyrings are /etc/apt/trusted.gpg, /etc/apt/trusted.gpg.d/*.{gpg,asc} and
// /usr/share/keyrings/*.{gpg,asc} except *removed* (Debian's retired keys),
// each only if it looks like an OpenPGP keyring.
[[nodiscard]] Result<GuestAptState> copy_guest_state(const GuestView& guest,
                                                     const std::optional<std::string>& keyring,
                                                     const AptWorkspace& workspace);

}  // namespace pv::patcher::repo
