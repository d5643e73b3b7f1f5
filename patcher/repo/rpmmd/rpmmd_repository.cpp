#include "patcher/repo/rpmmd/rpmmd_repository.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <rpm/rpmpgp.h>

#include "common/fd.hpp"
#include "patcher/detect/package_file.hpp"
#include "patcher/repo/rpmmd/libsolv.hpp"

namespace pv::patcher::repo {

namespace {

constexpr const char* kRepomd = "repodata/repomd.xml";
constexpr const char* kSignature = "repodata/repomd.xml.asc";
constexpr size_t kMaxGpgvOutput = 1u << 20;

struct FreePool {
    void operator()(Pool* pool) const { pool_free(pool); }
};

// KEY as binary OpenPGP packets: armored keys are decoded by librpm, as
// `rpm --import` decodes them; anything else that does not start with a
// packet tag is refused.
Result<std::string> binary_key(const RpmKey& key) {
    if (!key.bytes.empty() && (static_cast<unsigned char>(key.bytes[0]) & 0x80) != 0)
        return key.bytes;
    uint8_t* packets = nullptr;
    size_t length = 0;
    const pgpArmor armor = pgpParsePkts(key.bytes.c_str(), &packets, &length);
    std::unique_ptr<uint8_t, decltype(&free)> owned(packets, &free);
    if (armor != PGPARMOR_PUBKEY || length == 0)
        return fail(make_error("read the key " + key.origin,
                               "it is not an OpenPGP public key (armored or binary)"));
    return std::string(reinterpret_cast<const char*>(packets), length);
}

Result<void> write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out)
        return fail(errno_error("write " + path));
    return {};
}

struct GpgvOutcome {
    int status = -1;
    std::string output;  // status lines ("[GNUPG:] ...") and messages
};

// gpgv ARGUMENTS with stdout and stderr on one pipe, in the C locale.
Result<GpgvOutcome> run_gpgv(const std::vector<std::string>& arguments) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        return fail(errno_error("create a pipe for gpgv"));
    Fd reader(pipe_fds[0]);
    Fd writer(pipe_fds[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, writer.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, writer.get(), 2);
    std::vector<char*> argv;
    std::string program = "gpgv";
    argv.push_back(program.data());
    std::vector<std::string> copies = arguments;
    for (auto& argument : copies)
        argv.push_back(argument.data());
    argv.push_back(nullptr);
    std::string locale = "LC_ALL=C";
    char* environment[] = {locale.data(), nullptr};
    pid_t child = -1;
    const int spawned = posix_spawnp(&child, "gpgv", &actions, nullptr, argv.data(), environment);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0)
        return fail(errno_error("run gpgv (package gpgv)", spawned));
    writer.reset();
    GpgvOutcome outcome;
    char buffer[4096];
    for (ssize_t count; (count = read(reader.get(), buffer, sizeof(buffer))) != 0;) {
        if (count < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (outcome.output.size() < kMaxGpgvOutput)
            outcome.output.append(buffer, static_cast<size_t>(count));
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    outcome.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return outcome;
}

// The value after "[GNUPG:] KEYWORD " in OUTPUT's first such line.
std::optional<std::string> status_line(const std::string& output, const std::string& keyword) {
    std::istringstream lines(output);
    const std::string prefix = "[GNUPG:] " + keyword;
    for (std::string line; std::getline(lines, line);)
        if (line == prefix || line.starts_with(prefix + " "))
            return line.size() > prefix.size() ? line.substr(prefix.size() + 1) : std::string();
    return std::nullopt;
}

// What gpgv said besides its status lines, on one line.
std::string gpgv_messages(const std::string& output) {
    std::istringstream lines(output);
    std::string text;
    for (std::string line; std::getline(lines, line);)
        if (!line.starts_with("[GNUPG:]") && !line.empty())
            text += (text.empty() ? "" : "; ") + line;
    return text;
}

Result<std::string> verify_signature(const std::string& root, const std::vector<RpmKey>& keys,
                                     const std::string& work_dir) {
    const std::string what = "verify " + root + "/" + kRepomd;
    if (keys.empty())
        return fail(make_error(what, "no key to check it with; give --keyring FILE"));
    if (!std::filesystem::exists(root + "/" + kSignature))
        return fail(make_error(what, std::string("the repository is not signed: no ") + kSignature +
                                         " (a signed repomd.xml is required)"));
    std::string keyring;
    for (const auto& key : keys)
        keyring += PV_TRY(binary_key(key));
    const std::string keyring_path = work_dir + "/rpmmd-keyring.gpg";
    PV_TRY(write_file(keyring_path, keyring));
    const std::string home = work_dir + "/rpmmd-gnupg";
    std::filesystem::create_directories(home);
    ::chmod(home.c_str(), 0700);
    const auto outcome =
        PV_TRY(run_gpgv({"--homedir", home, "--status-fd", "1", "--keyring", keyring_path,
                         root + "/" + kSignature, root + "/" + kRepomd}));
    const auto valid = status_line(outcome.output, "VALIDSIG");
    if (outcome.status == 0 && valid && !status_line(outcome.output, "BADSIG"))
        return valid->substr(0, valid->find(' '));
    std::string reason = "gpgv does not accept its signature";
    if (status_line(outcome.output, "BADSIG"))
        reason = "BAD signature: repomd.xml is not what was signed";
    else if (status_line(outcome.output, "NO_PUBKEY"))
        reason = "it is signed by a key that is not among the keys given";
    else if (status_line(outcome.output, "EXPKEYSIG"))
        reason = "it is signed by an expired key";
    else if (status_line(outcome.output, "REVKEYSIG"))
        reason = "it is signed by a revoked key";
    return fail(
        make_error(what, fmt::format("{} (gpgv: {})", reason, gpgv_messages(outcome.output))));
}

// The location and SHA-256 repomd.xml gives for its data of TYPE, if any.
struct RepomdEntry {
    std::string location;
    std::string sha256;
};

Result<std::optional<RepomdEntry>> find_entry(Pool* pool, Repo* repo, const char* type) {
    Dataiterator iterator;
    dataiterator_init(&iterator, pool, repo, SOLVID_META, REPOSITORY_REPOMD_TYPE, type,
                      SEARCH_STRING);
    dataiterator_prepend_keyname(&iterator, REPOSITORY_REPOMD);
    std::optional<RepomdEntry> entry;
    if (dataiterator_step(&iterator)) {
        dataiterator_setpos_parent(&iterator);
        const char* location = pool_lookup_str(pool, SOLVID_POS, REPOSITORY_REPOMD_LOCATION);
        Id checksum_type = 0;
        const char* checksum =
            pool_lookup_checksum(pool, SOLVID_POS, REPOSITORY_REPOMD_CHECKSUM, &checksum_type);
        if (location == nullptr || checksum == nullptr || checksum_type != REPOKEY_TYPE_SHA256) {
            dataiterator_free(&iterator);
            return fail(make_error(std::string("read ") + kRepomd,
                                   fmt::format("its {} entry has no location or no SHA-256 "
                                               "checksum (other checksums are not accepted)",
                                               type)));
        }
        entry = RepomdEntry{location, checksum};
    }
    dataiterator_free(&iterator);
    return entry;
}

// ROOT/LOCATION once its bytes are the signed ones; LOCATION stays inside
// repodata/.
Result<std::string> verified_file(const std::string& root, const RepomdEntry& entry) {
    const std::filesystem::path relative(entry.location);
    if (relative.is_absolute() || !entry.location.starts_with("repodata/") ||
        entry.location.find("..") != std::string::npos)
        return fail(make_error(std::string("read ") + kRepomd,
                               "it names a file outside repodata/: " + entry.location));
    const std::string path = root + "/" + entry.location;
    const auto digest = PV_TRY(sha256_of_file(path));
    if (digest.sha256 != entry.sha256)
        return fail(make_error("check " + path,
                               fmt::format("SHA-256 {} is not the {} the signed repomd.xml lists",
                                           digest.sha256, entry.sha256)));
    return path;
}

}  // namespace

bool is_rpmmd_repository(const std::string& root) {
    return std::filesystem::is_regular_file(root + "/" + kRepomd);
}

Result<RpmMdRepository> open_rpmmd_repository(const std::string& root,
                                              const std::vector<RpmKey>& keys,
                                              const std::string& work_dir) {
    RpmMdRepository repository;
    repository.root = root;
    repository.signer = PV_TRY(verify_signature(root, keys, work_dir));
    std::unique_ptr<Pool, FreePool> pool(pool_create());
    Repo* repo = repo_create(pool.get(), "repomd");
    const std::string repomd = root + "/" + kRepomd;
    FILE* file = std::fopen(repomd.c_str(), "r");
    if (file == nullptr)
        return fail(errno_error("open " + repomd));
    const int added = repo_add_repomdxml(repo, file, 0);
    std::fclose(file);
    if (added != 0)
        return fail(make_error("read " + repomd, pool_errstr(pool.get())));
    repo_internalize(repo);
    const auto primary = PV_TRY(find_entry(pool.get(), repo, "primary"));
    if (!primary)
        return fail(make_error("read " + repomd, "it lists no primary data"));
    repository.primary = PV_TRY(verified_file(root, *primary));
    if (const auto updateinfo = PV_TRY(find_entry(pool.get(), repo, "updateinfo")))
        repository.updateinfo = PV_TRY(verified_file(root, *updateinfo));
    return repository;
}

}  // namespace pv::patcher::repo
