#include "agent/inventory.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/process.hpp"
#include "common/fd.hpp"

namespace pv::agent {

namespace {

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos)
        return {};
    const auto last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

// Splits off the next line; the remainder no longer contains it.
std::string_view next_line(std::string_view& text) {
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    return line;
}

// Shell-like unquoting of an os-release value: '...' literal, "..." with
// backslash escapes, and unquoted text with backslash escapes.
std::string unquote(std::string_view value) {
    std::string out;
    char quote = 0;
    for (size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (quote == 0 && (c == '"' || c == '\'')) {
            quote = c;
        } else if (c == quote) {
            quote = 0;
        } else if (c == '\\' && quote != '\'' && i + 1 < value.size()) {
            out += value[++i];
        } else {
            out += c;
        }
    }
    return out;
}

bool is_valid_key(std::string_view key) {
    if (key.empty())
        return false;
    for (char c : key) {
        const bool ok =
            (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

// dpkg's Status field is "want flag state"; the state decides whether the
// package counts as installed for patching.
bool counts_as_installed(std::string_view status) {
    const auto last_space = status.find_last_of(' ');
    const std::string_view state =
        last_space == std::string_view::npos ? status : status.substr(last_space + 1);
    return !state.empty() && state != "not-installed" && state != "config-files";
}

void finish_paragraph(std::map<std::string, std::string>& fields,
                      std::vector<InstalledPackage>& packages) {
    const auto& package = fields["Package"];
    const auto& version = fields["Version"];
    const auto& status = fields["Status"];
    if (!package.empty() && !version.empty() && counts_as_installed(status))
        packages.push_back({package, version, fields["Architecture"], status});
    fields.clear();
}

}  // namespace

std::map<std::string, std::string> parse_os_release(std::string_view text) {
    std::map<std::string, std::string> fields;
    while (!text.empty()) {
        const std::string_view line = trim(next_line(text));
        if (line.empty() || line.front() == '#')
            continue;
        const auto equals = line.find('=');
        if (equals == std::string_view::npos)
            continue;
        const std::string_view key = trim(line.substr(0, equals));
        if (!is_valid_key(key))
            continue;
        fields[std::string(key)] = unquote(trim(line.substr(equals + 1)));
    }
    return fields;
}

std::vector<InstalledPackage> parse_dpkg_status(std::string_view text) {
    std::vector<InstalledPackage> packages;
    std::map<std::string, std::string> fields;
    while (!text.empty()) {
        const std::string_view line = next_line(text);
        if (trim(line).empty()) {
            finish_paragraph(fields, packages);
            continue;
        }
        // Continuation lines (Description, Conffiles) belong to fields this
        // parser does not need.
        if (line.front() == ' ' || line.front() == '\t')
            continue;
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
            continue;
        const std::string key(line.substr(0, colon));
        // Duplicate fields are invalid deb822; the first one wins, so a later
        // line cannot rename a package that was already described.
        const bool wanted =
            key == "Package" || key == "Version" || key == "Architecture" || key == "Status";
        if (wanted && fields.find(key) == fields.end())
            fields[key] = std::string(trim(line.substr(colon + 1)));
    }
    finish_paragraph(fields, packages);
    return packages;
}

std::vector<InstalledPackage> parse_rpm_query(std::string_view text) {
    std::vector<InstalledPackage> packages;
    while (!text.empty()) {
        std::string_view line = trim(next_line(text));
        std::string_view parts[4];
        size_t count = 0;
        while (count < 4) {
            const auto tab = line.find('\t');
            parts[count++] = line.substr(0, tab);
            if (tab == std::string_view::npos)
                break;
            line = line.substr(tab + 1);
        }
        if (count != 4 || parts[0].empty() || parts[2].empty())
            continue;
        std::string version(parts[2]);
        if (parts[1] != "(none)" && parts[1] != "0" && !parts[1].empty())
            version = std::string(parts[1]) + ":" + version;
        packages.push_back({std::string(parts[0]), version, std::string(parts[3]), "installed"});
    }
    return packages;
}

Result<std::string> read_guest_file(const std::string& root, const std::string& path,
                                    size_t limit) {
    Fd root_fd = PV_TRY(Fd::open(root, O_RDONLY | O_DIRECTORY));
    struct open_how how {};
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    Fd fd(static_cast<int>(syscall(SYS_openat2, root_fd.get(), path.c_str(), &how, sizeof how)));
    if (!fd.valid())
        return fail(errno_error("open " + path + " in the guest"));
    struct stat st {};
    if (fstat(fd.get(), &st) != 0)
        return fail(errno_error("stat " + path));
    if (!S_ISREG(st.st_mode))
        return fail(make_error("read " + path + " in the guest", "not a regular file"));
    if (static_cast<uint64_t>(st.st_size) > limit)
        return fail(make_error("read " + path + " in the guest",
                               "file of " + std::to_string(st.st_size) +
                                   " bytes is over the limit of " + std::to_string(limit)));
    std::string data(static_cast<size_t>(st.st_size), '\0');
    PV_TRY(pread_all(fd.get(), data.data(), data.size(), 0, "read " + path + " in the guest"));
    return data;
}

namespace {

void add_packages(wire::InspectResult& result, const std::vector<InstalledPackage>& packages) {
    for (const auto& package : packages) {
        auto* out = result.add_packages();
        out->set_name(package.name);
        out->set_version(package.version);
        out->set_architecture(package.architecture);
        out->set_status(package.status);
    }
}

bool exists(const std::string& path) {
    struct stat st {};
    return lstat(path.c_str(), &st) == 0;
}

Result<void> inspect_rpm(const std::string& root, wire::InspectResult& result) {
    std::string output;
    const std::vector<std::string> argv = {"rpm", "-qa", "--qf", kRpmQueryFormat};
    const int status =
        PV_TRY(run_in_chroot(root, argv, [&](LogStream stream, std::string_view line) {
            if (stream == LogStream::Stdout && output.size() < kMaxDatabaseFileSize) {
                output += line;
                output += '\n';
            }
        }));
    if (status != 0)
        return fail(
            make_error("rpm -qa in the guest", "exited with status " + std::to_string(status)));
    add_packages(result, parse_rpm_query(output));
    return {};
}

}  // namespace

Result<wire::InspectResult> inspect(const std::string& root) {
    wire::InspectResult result;
    auto os_release = read_guest_file(root, "/etc/os-release", 64 * 1024);
    if (!os_release)
        os_release = read_guest_file(root, "/usr/lib/os-release", 64 * 1024);
    if (os_release) {
        for (auto& [key, value] : parse_os_release(*os_release))
            (*result.mutable_os_release())[key] = value;
    }
    if (exists(root + "/var/lib/dpkg/status")) {
        result.set_package_manager(wire::PACKAGE_MANAGER_DPKG);
        const std::string text =
            PV_TRY(read_guest_file(root, "/var/lib/dpkg/status", kMaxDatabaseFileSize));
        add_packages(result, parse_dpkg_status(text));
    } else if (exists(root + "/var/lib/rpm") || exists(root + "/usr/lib/sysimage/rpm")) {
        result.set_package_manager(wire::PACKAGE_MANAGER_RPM);
        PV_TRY(inspect_rpm(root, result));
    }
    return result;
}

}  // namespace pv::agent
