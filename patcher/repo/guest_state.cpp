#include "patcher/repo/guest_state.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <algorithm>

#include "common/fd.hpp"

namespace pv::patcher::repo {

namespace {

// A real dpkg status file of a large server is a few MiB (agent/inventory.hpp).
constexpr uint64_t kMaxStatusSize = uint64_t{256} * 1024 * 1024;
constexpr uint64_t kMaxSmallFile = uint64_t{16} * 1024 * 1024;

bool plain_name(const std::string& name) {
    return !name.empty() && name.front() != '.' &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-' || c == '.';
           });
}

// A binary keyring starts with an OpenPGP packet tag (bit 7 set); an
// armored one with its header. apt-key warns about anything else, and a
// warning fails the update here.
bool looks_like_keyring(const std::string& data, const std::string& name) {
    if (name.ends_with(".asc"))
        return data.find("-----BEGIN PGP PUBLIC KEY BLOCK-----") != std::string::npos;
    return !data.empty() && (static_cast<unsigned char>(data[0]) & 0x80) != 0;
}

std::string architecture_of_dpkg(const GuestView& guest) {
    for (const auto& package : guest.installed)
        if (package.name == "dpkg")
            return package.architecture;
    return {};
}

Result<void> copy_keyrings_from(GuestFiles& files, const std::string& directory,
                                const std::string& prefix, const AptWorkspace& workspace,
                                GuestAptState& state) {
    for (const auto& name : PV_TRY(files.list(directory))) {
        const std::string path = directory + "/" + name;
        if (!name.ends_with(".gpg") && !name.ends_with(".asc"))
            continue;
        if (name.find("removed") != std::string::npos) {
            state.skipped.push_back(path + ": retired keys are not trusted");
            continue;
        }
        auto data = files.read(path, kMaxSmallFile);
        if (!data || !*data) {
            state.skipped.push_back(path + (data ? ": dangling" : ": " + data.error().message()));
            continue;
        }
        if (!plain_name(name) || !looks_like_keyring(**data, name)) {
            state.skipped.push_back(path + ": not an OpenPGP keyring");
            continue;
        }
        PV_TRY(write_file(workspace.trusted_parts() + "/" + prefix + name, **data));
        state.keyrings.push_back(path);
    }
    return {};
}

Result<void> copy_guest_keyrings(GuestFiles& files, const AptWorkspace& workspace,
                                 GuestAptState& state) {
    if (auto legacy = PV_TRY(files.read("/etc/apt/trusted.gpg", kMaxSmallFile))) {
        PV_TRY(write_file(workspace.etc() + "/trusted.gpg", *legacy));
        state.keyrings.push_back("/etc/apt/trusted.gpg");
    }
    PV_TRY(copy_keyrings_from(files, "/etc/apt/trusted.gpg.d", "etc-", workspace, state));
    PV_TRY(copy_keyrings_from(files, "/usr/share/keyrings", "share-", workspace, state));
    return {};
}

Result<void> copy_host_keyring(const std::string& keyring, const AptWorkspace& workspace,
                               GuestAptState& state) {
    const Fd fd = PV_TRY(Fd::open(keyring, O_RDONLY));
    struct stat status {};
    if (::fstat(fd.get(), &status) != 0 || !S_ISREG(status.st_mode) ||
        static_cast<uint64_t>(status.st_size) > kMaxSmallFile)
        return fail(
            make_error("read the keyring " + keyring, "not a regular file of at most 16 MiB"));
    std::string data(static_cast<size_t>(status.st_size), '\0');
    PV_TRY(pread_all(fd.get(), data.data(), data.size(), 0, "read the keyring " + keyring));
    const bool armored = looks_like_keyring(data, "keyring.asc");
    if (!armored && !looks_like_keyring(data, "keyring.gpg"))
        return fail(make_error("read the keyring " + keyring,
                               "neither a binary OpenPGP keyring nor an armored public key block"));
    PV_TRY(
        write_file(workspace.trusted_parts() + (armored ? "/keyring.asc" : "/keyring.gpg"), data));
    state.keyrings.push_back(keyring);
    return {};
}

Result<void> copy_preferences(GuestFiles& files, const AptWorkspace& workspace,
                              GuestAptState& state) {
    if (auto main = PV_TRY(files.read("/etc/apt/preferences", kMaxSmallFile))) {
        PV_TRY(write_file(workspace.etc() + "/preferences", *main));
        ++state.preference_files;
    }
    for (const auto& name : PV_TRY(files.list("/etc/apt/preferences.d"))) {
        const std::string path = "/etc/apt/preferences.d/" + name;
        // apt itself reads only such names (no extension, or ".pref").
        if (!plain_name(name)) {
            state.skipped.push_back(path + ": apt ignores this name");
            continue;
        }
        auto data = PV_TRY(files.read(path, kMaxSmallFile));
        if (!data)
            continue;
        PV_TRY(write_file(workspace.preference_parts() + "/" + name, *data));
        ++state.preference_files;
    }
    return {};
}

std::vector<std::string> foreign_architectures(const std::string& arch_file,
                                               const std::string& native) {
    std::vector<std::string> foreign;
    size_t start = 0;
    while (start < arch_file.size()) {
        size_t end = arch_file.find('\n', start);
        if (end == std::string::npos)
            end = arch_file.size();
        std::string line = arch_file.substr(start, end - start);
        start = end + 1;
        line.erase(std::remove_if(line.begin(), line.end(), ::isspace), line.end());
        if (plain_name(line) && line != native &&
            std::find(foreign.begin(), foreign.end(), line) == foreign.end())
            foreign.push_back(line);
    }
    return foreign;
}

}  // namespace

Result<GuestAptState> copy_guest_state(const GuestView& guest,
                                       const std::optional<std::string>& keyring,
                                       const AptWorkspace& workspace) {
    GuestAptState state;
    state.settings.native_architecture = architecture_of_dpkg(guest);
    if (state.settings.native_architecture.empty() ||
        !plain_name(state.settings.native_architecture))
        return fail(make_error("read the guest's dpkg architecture",
                               "the package dpkg is not installed (or has no architecture)"));
    auto status = PV_TRY(guest.files.read("/var/lib/dpkg/status", kMaxStatusSize));
    if (!status)
        return fail(make_error("read the guest's /var/lib/dpkg/status", "it does not exist"));
    PV_TRY(write_file(workspace.status_file(), *status));
    if (auto arch = PV_TRY(guest.files.read("/var/lib/dpkg/arch", kMaxSmallFile)))
        state.settings.foreign_architectures =
            foreign_architectures(*arch, state.settings.native_architecture);
    PV_TRY(copy_preferences(guest.files, workspace, state));
    if (keyring)
        PV_TRY(copy_host_keyring(*keyring, workspace, state));
    else
        PV_TRY(copy_guest_keyrings(guest.files, workspace, state));
    return state;
}

}  // namespace pv::patcher::repo
