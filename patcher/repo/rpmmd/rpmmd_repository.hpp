#pragma once

// An rpm-md repository (repodata/repomd.xml and the files it names), checked
// as dnf checks one with repo_gpgcheck: repomd.xml against its detached
// signature repomd.xml.asc, by gpgv and only with the keys given, then every
// file read from it against the SHA-256 that the signed repomd.xml lists.
// Nothing of the repository but repomd.xml is parsed before that.

#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::patcher::repo {

struct RpmMdRepository {
    std::string root;                       // absolute directory holding repodata/
    std::string signer;                     // fingerprint of the key that signed repomd.xml
    std::string primary;                    // verified primary.xml[.gz|.xz|.zst]
    std::optional<std::string> updateinfo;  // verified updateinfo.xml[...]
};

// One OpenPGP public key (armored as in /etc/pki/rpm-gpg, or binary) and
// where it came from, for messages.
struct RpmKey {
    std::string origin;
    std::string bytes;
};

// Whether the directory ROOT is an rpm-md repository.
[[nodiscard]] bool is_rpmmd_repository(const std::string& root);

// Verifies the repository at ROOT with KEYS; WORK_DIR (which must exist)
// receives the keyring and an empty GnuPG home for gpgv.
[[nodiscard]] Result<RpmMdRepository> open_rpmmd_repository(const std::string& root,
                                                            const std::vector<RpmKey>& keys,
                                                            const std::string& work_dir);

}  // namespace pv::patcher::repo
