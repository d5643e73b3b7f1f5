#include "patcher/repo/changelog.hpp"

#include <zlib.h>

#include <algorithm>
#include <regex>
#include <set>

#include "patcher/detect/version.hpp"
#include "patcher/repo/apt_headers.hpp"
#include "patcher/repo/apt_workspace.hpp"

namespace pv::patcher::repo {

namespace {

// A changelog.Debian.gz of a long-lived package is a few hundred KiB.
constexpr size_t kMaxCompressed = 16 * 1024 * 1024;
constexpr size_t kMaxInflated = 64 * 1024 * 1024;

// Collects one member of data.tar into memory and lets every other pass.
class MemberCapture final : public pkgDirStream {
  public:
    explicit MemberCapture(std::string name) : m_name(std::move(name)) {}

    bool DoItem(Item& item, int& fd) override {
        std::string_view name = item.Name;
        if (name.starts_with("./"))
            name.remove_prefix(2);
        if (item.Type != Item::File || name != m_name)
            return true;  // fd stays -1: skipped
        if (item.Size > kMaxCompressed)
            return _error->Error("%s is larger than %zu bytes", item.Name, kMaxCompressed);
        data.emplace();
        data->resize(static_cast<size_t>(item.Size));
        fd = -2;  // ExtractTar passes the bytes to Process()
        return true;
    }
    bool Process(Item& /*item*/, const unsigned char* bytes, unsigned long long size,
                 unsigned long long position) override {
        if (!data || position + size > data->size())
            return false;
        std::copy(bytes, bytes + size, data->begin() + static_cast<std::ptrdiff_t>(position));
        return true;
    }
    bool FinishedFile(Item& /*item*/, int /*fd*/) override { return true; }
    bool Fail(Item& /*item*/, int /*fd*/) override { return false; }

    std::optional<std::string> data;

  private:
    std::string m_name;
};

Result<std::string> gunzip(const std::string& compressed, const std::string& what) {
    z_stream stream{};
    if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK)
        return fail(make_error("inflate " + what, "zlib set-up failed"));
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
    stream.avail_in = static_cast<uInt>(compressed.size());
    std::string out;
    int status = Z_OK;
    while (status == Z_OK) {
        char buffer[64 * 1024];
        stream.next_out = reinterpret_cast<Bytef*>(buffer);
        stream.avail_out = sizeof buffer;
        status = inflate(&stream, Z_NO_FLUSH);
        out.append(buffer, sizeof buffer - stream.avail_out);
        if (out.size() > kMaxInflated)
            status = Z_MEM_ERROR;
    }
    inflateEnd(&stream);
    if (status != Z_STREAM_END)
        return fail(make_error("inflate " + what, "not a whole gzip stream"));
    return out;
}

void add_matches(const std::string& text, const std::regex& pattern, std::set<std::string>& into) {
    for (auto match = std::sregex_iterator(text.begin(), text.end(), pattern);
         match != std::sregex_iterator(); ++match)
        into.insert(match->str());
}

}  // namespace

ChangelogIds changelog_ids_since(std::string_view text, const std::string& since) {
    // "source (version) distribution; urgency=..." starts an entry.
    static const std::regex header(R"(^[a-z0-9][a-z0-9+.-]* \(([^ ()]+)\) )");
    static const std::regex cve(R"(CVE-[0-9]{4}-[0-9]{4,})");
    static const std::regex advisory(R"(\bD[SL]A-[0-9]+-[0-9]+\b)");
    std::set<std::string> cves, advisories;
    bool in_entry = false;
    while (!text.empty()) {
        const size_t end = text.find('\n');
        const std::string line(text.substr(0, end));
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        if (!line.empty() && line.front() != ' ' && line.front() != '\t') {
            std::smatch match;
            if (!std::regex_search(line, match, header))
                break;
            auto order = compare_versions(PackageFamily::deb, match[1].str(), since);
            in_entry = since.empty() || (order && *order > 0);
            if (!in_entry)
                break;
            continue;
        }
        if (in_entry) {
            add_matches(line, cve, cves);
            add_matches(line, advisory, advisories);
        }
    }
    return {{cves.begin(), cves.end()}, {advisories.begin(), advisories.end()}};
}

Result<std::optional<std::string>> read_deb_changelog(const std::string& path,
                                                      const std::string& package) {
    FileFd file;
    if (!file.Open(path, FileFd::ReadOnly))
        return fail(make_error("open " + path, apt_failure_reason()));
    debDebFile deb(file);
    if (_error->PendingError())
        return fail(make_error("read " + path, apt_failure_reason()));
    MemberCapture capture("usr/share/doc/" + package + "/changelog.Debian.gz");
    if (!deb.ExtractTarMember(capture, "data.tar"))
        return fail(make_error("read the data of " + path, apt_failure_reason()));
    if (!capture.data)
        return std::optional<std::string>();
    return std::optional<std::string>(PV_TRY(gunzip(*capture.data, path + " changelog")));
}

}  // namespace pv::patcher::repo
