#include "guestfs/dpkg/dpkg_database.hpp"

#include <apt-pkg/tagfile.h>

#include <algorithm>
#include <array>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace pv::guestfs {

namespace {

// dpkg's words for the three parts of Status (dpkg-query(1), "want flag state").
constexpr std::array kWants = {"unknown", "install", "hold", "deinstall", "purge"};
constexpr std::array kFlags = {"ok", "reinstreq"};
constexpr std::array kStates = {"not-installed",    "config-files",    "half-installed",
                                "unpacked",         "half-configured", "triggers-awaited",
                                "triggers-pending", "installed"};

template <size_t N>
bool one_of(std::string_view word, const std::array<const char*, N>& words) {
    return std::find(words.begin(), words.end(), word) != words.end();
}

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\n");
    if (first == std::string_view::npos)
        return {};
    return text.substr(first, text.find_last_not_of(" \t\n") - first + 1);
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// Field names are printable ASCII without spaces or colons (deb822(5)).
bool is_field_name(std::string_view name) {
    if (name.empty() || name.front() == '-' || name.front() == '#')
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
    });
}

// dpkg allows only ASCII in names, architectures, versions and states.
bool is_printable_ascii(std::string_view value) {
    return std::all_of(value.begin(), value.end(), [](char c) {
        return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f;
    });
}

struct Paragraph {
    size_t offset = 0;
    std::optional<std::string> package, architecture, version, status;

    [[nodiscard]] Error error(const std::string& problem) const {
        return make_error("the paragraph at byte " + std::to_string(offset), problem);
    }
};

// Keeps the value of one of the four fields the host needs.
// NAME as written, KEY in lower case.
Result<void> keep_field(Paragraph& paragraph, std::string_view name, const std::string& key,
                        std::string_view value) {
    std::optional<std::string>* slot = key == "package"        ? &paragraph.package
                                       : key == "architecture" ? &paragraph.architecture
                                       : key == "version"      ? &paragraph.version
                                       : key == "status"       ? &paragraph.status
                                                               : nullptr;
    if (slot == nullptr)
        return {};
    if (value.size() > kMaxFieldBytes)
        return fail(paragraph.error(std::string(name) + " is " + std::to_string(value.size()) +
                                    " bytes, over the limit of " + std::to_string(kMaxFieldBytes)));
    if (!is_printable_ascii(value))
        return fail(paragraph.error(std::string(name) +
                                    " holds a byte that is not printable ASCII, or a "
                                    "second line"));
    *slot = std::string(value);
    return {};
}

Result<Paragraph> read_fields(const pkgTagSection& section, size_t offset) {
    Paragraph paragraph;
    paragraph.offset = offset;
    std::set<std::string> seen;
    for (unsigned int i = 0; i < section.Count(); ++i) {
        const char* start = nullptr;
        const char* stop = nullptr;
        section.Get(start, stop, i);
        const std::string_view field(start, static_cast<size_t>(stop - start));
        const auto colon = field.find(':');
        const std::string_view name =
            colon == std::string_view::npos ? std::string_view{} : field.substr(0, colon);
        if (!is_field_name(name))
            return fail(paragraph.error(
                "a line is not \"Field: value\": \"" +
                std::string(field.substr(0, std::min<size_t>(field.find('\n'), 60))) + "\""));
        const std::string key = lower(name);
        if (!seen.insert(key).second)
            return fail(paragraph.error("the field " + std::string(name) + " appears twice"));
        PV_TRY(keep_field(paragraph, name, key, trim(field.substr(colon + 1))));
    }
    return paragraph;
}

// Status "want flag state"; sets INSTALLED and returns the state.
Result<std::string> check_status(const Paragraph& paragraph, bool& installed) {
    const std::string& status = *paragraph.status;
    const auto first = status.find(' ');
    const auto second = first == std::string::npos ? first : status.find(' ', first + 1);
    if (second == std::string::npos || status.find(' ', second + 1) != std::string::npos ||
        !one_of(std::string_view(status).substr(0, first), kWants) ||
        !one_of(std::string_view(status).substr(first + 1, second - first - 1), kFlags) ||
        !one_of(std::string_view(status).substr(second + 1), kStates))
        return fail(paragraph.error("Status \"" + status + "\" is not dpkg's \"want flag state\""));
    const std::string state = status.substr(second + 1);
    installed = state == "installed" && status.substr(first + 1, second - first - 1) == "ok";
    return state;
}

using Seen = std::set<std::pair<std::string, std::string>>;

Result<void> add_paragraph(const pkgTagSection& section, size_t offset,
                           std::vector<InstalledPackage>& packages, Seen& seen) {
    const Paragraph paragraph = PV_TRY(read_fields(section, offset));
    if (!paragraph.package || paragraph.package->empty())
        return fail(paragraph.error("no Package field"));
    if (!paragraph.status)
        return fail(paragraph.error("no Status field for " + *paragraph.package));
    bool installed = false;
    const std::string state = PV_TRY(check_status(paragraph, installed));
    if (state == "not-installed")
        return {};
    if (!paragraph.version || paragraph.version->empty())
        return fail(
            paragraph.error("no Version for " + *paragraph.package + ", which is " + state));
    const std::string architecture = paragraph.architecture.value_or("");
    if (!seen.emplace(*paragraph.package, architecture).second)
        return fail(
            paragraph.error(*paragraph.package + ":" + architecture + " is listed a second time"));
    packages.push_back(
        {*paragraph.package, architecture, *paragraph.version, *paragraph.status, installed});
    return {};
}

}  // namespace

Result<std::vector<InstalledPackage>> parse_dpkg_status(std::string_view text) {
    // pkgTagSection::Scan needs the blank line that ends the last paragraph.
    std::string buffer(text);
    buffer += "\n\n";
    std::vector<InstalledPackage> packages;
    Seen seen;
    size_t paragraphs = 0;
    size_t position = 0;
    for (;;) {
        while (position < text.size() && buffer[position] == '\n')
            ++position;
        if (position >= text.size())
            break;
        if (buffer[position] == ' ' || buffer[position] == '\t')
            return fail(make_error("the line at byte " + std::to_string(position),
                                   "a continuation line outside any paragraph"));
        if (++paragraphs > kMaxPackages)
            return fail(make_error("the paragraph at byte " + std::to_string(position),
                                   "more than " + std::to_string(kMaxPackages) + " paragraphs"));
        pkgTagSection section;
        if (!section.Scan(buffer.data() + position, buffer.size() - position))
            return fail(make_error("the paragraph at byte " + std::to_string(position),
                                   "not a deb822 paragraph"));
        PV_TRY(add_paragraph(section, position, packages, seen));
        position += std::max<size_t>(section.size(), 1);
    }
    return packages;
}

Result<std::vector<InstalledPackage>> read_dpkg_database(GuestFilesystem& filesystem) {
    const std::string where = std::string(kDpkgStatusPath) + " on " + filesystem.describe();
    const std::string text = PV_TRY(filesystem.read_file(kDpkgStatusPath, kMaxStatusBytes));
    auto packages = parse_dpkg_status(text);
    if (!packages)
        return fail(with_context(packages.error(), "read " + where));
    // dpkg names its journal records with decimal numbers; a missing
    // directory holds none.
    if (PV_TRY(filesystem.exists(kDpkgUpdatesPath))) {
        const auto records = PV_TRY(filesystem.list_directory(kDpkgUpdatesPath, 100'000));
        for (const auto& name : records)
            if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit))
                return fail(
                    make_error("read " + where,
                               std::string("dpkg's journal holds a record it has not applied (") +
                                   kDpkgUpdatesPath + "/" + name + ")"));
    }
    return packages;
}

}  // namespace pv::guestfs
