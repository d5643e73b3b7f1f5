#include "patcher/repo/advisories.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fd.hpp"
#include "patcher/detect/version.hpp"

namespace pv::patcher::repo {

using nlohmann::json;

namespace {

// The tracker's full JSON is about 100 MiB; ten times that is not a dump.
constexpr uint64_t kMaxDumpSize = uint64_t{1} << 30;

// Top-level keys of an OSV record (OSV schema 1.x), kept while reading a
// JSON object whose kind is not known yet.
bool is_osv_field(const std::string& key) {
    static const std::set<std::string> fields = {
        "schema_version", "id",       "modified",   "published", "withdrawn",
        "aliases",        "upstream", "related",    "summary",   "details",
        "severity",       "affected", "references", "credits",   "database_specific"};
    return fields.count(key) != 0;
}

Result<std::string> read_dump(const std::string& path) {
    const Fd fd = PV_TRY(Fd::open(path, O_RDONLY));
    struct stat status {};
    if (::fstat(fd.get(), &status) != 0 || !S_ISREG(status.st_mode))
        return fail(make_error("read " + path, "not a regular file"));
    if (static_cast<uint64_t>(status.st_size) > kMaxDumpSize)
        return fail(make_error("read " + path, "larger than 1 GiB"));
    std::string text(static_cast<size_t>(status.st_size), '\0');
    PV_TRY(pread_all(fd.get(), text.data(), text.size(), 0, "read " + path));
    return text;
}

bool newer(const std::string& a, const std::string& b) {
    auto order = compare_versions(PackageFamily::deb, a, b);
    return order && *order > 0;
}

}  // namespace

// Reads either format into an AdvisoryDatabase; a member class so it may
// fill the database's private list.
class AdvisoryReader {
  public:
    AdvisoryReader(const std::string& path, const std::set<std::string>& sources,
                   std::string codename, std::string version_id)
        : m_path(path),
          m_sources(sources),
          m_codename(std::move(codename)),
          m_ecosystem("Debian:" + version_id) {}

    Result<AdvisoryDatabase> read() {
        std::error_code error;
        if (std::filesystem::is_directory(m_path, error))
            return read_directory();
        const std::string text = PV_TRY(read_dump(m_path));
        const auto first = text.find_first_not_of(" \t\r\n");
        json document = PV_TRY(parse(text, first != std::string::npos && text[first] == '['));
        if (document.is_array()) {
            m_database.m_format = "osv";
            for (size_t i = 0; i < document.size(); ++i)
                PV_TRY(add_osv(document[i], fmt::format("[{}]", i)));
        } else if (document.is_object() && document.contains("affected") &&
                   document.contains("id")) {
            m_database.m_format = "osv";
            PV_TRY(add_osv(document, ""));
        } else if (document.is_object()) {
            m_database.m_format = "debian-security-tracker";
            PV_TRY(add_tracker(document));
        } else {
            return fail(make_error("read " + m_path, "neither a tracker object nor OSV records"));
        }
        return std::move(m_database);
    }

  private:
    Result<json> parse(const std::string& text, bool array) {
        // Records and sources that do not concern the plan are dropped as
        // soon as they are read.
        auto keep = [&](int depth, json::parse_event_t event, json& parsed) {
            if (array && depth == 1 && event == json::parse_event_t::object_end)
                return names_a_source(parsed);
            if (!array && depth == 1 && event == json::parse_event_t::key)
                return parsed.is_string() && (m_sources.count(parsed.get<std::string>()) != 0 ||
                                              is_osv_field(parsed.get<std::string>()));
            return true;
        };
        try {
            return json::parse(text, keep);
        } catch (const json::exception& exception) {
            return fail(make_error("parse " + m_path, exception.what()));
        }
    }

    bool names_a_source(const json& record) const {
        if (!record.is_object() || !record.contains("affected") || !record["affected"].is_array())
            return false;
        for (const auto& affected : record["affected"]) {
            const auto* name = affected.is_object() && affected.contains("package") &&
                                       affected["package"].is_object() &&
                                       affected["package"].contains("name") &&
                                       affected["package"]["name"].is_string()
                                   ? affected["package"]["name"].get_ptr<const std::string*>()
                                   : nullptr;
            if (name != nullptr && m_sources.count(*name) != 0)
                return true;
        }
        return false;
    }

    Result<AdvisoryDatabase> read_directory() {
        m_database.m_format = "osv";
        std::vector<std::string> files;
        std::error_code error;
        for (const auto& entry : std::filesystem::directory_iterator(m_path, error))
            if (entry.path().extension() == ".json")
                files.push_back(entry.path().string());
        if (error)
            return fail(make_error("read " + m_path, error.message()));
        std::sort(files.begin(), files.end());
        for (const auto& file : files) {
            const std::string text = PV_TRY(read_dump(file));
            try {
                const json record = json::parse(text);
                if (names_a_source(record))
                    PV_TRY(add_osv(record, file));
            } catch (const json::exception& exception) {
                return fail(make_error("parse " + file, exception.what()));
            }
        }
        return std::move(m_database);
    }

    Error wrong(const std::string& where, const std::string& what) const {
        return make_error("read " + m_path, where + " " + what);
    }

    Result<void> add_tracker(const json& document) {
        for (const auto& [source, issues] : document.items()) {
            if (m_sources.count(source) == 0)
                continue;
            if (!issues.is_object())
                return fail(wrong(source, "must be an object of CVE ids"));
            for (const auto& [cve, issue] : issues.items()) {
                const std::string where = source + "." + cve;
                if (!issue.is_object())
                    return fail(wrong(where, "must be an object"));
                if (!issue.contains("releases"))
                    continue;
                const json& releases = issue["releases"];
                if (!releases.is_object())
                    return fail(wrong(where + ".releases", "must be an object"));
                if (!releases.contains(m_codename))
                    continue;
                const json& release = releases[m_codename];
                const auto status = release.value("status", std::string());
                const auto fixed = release.value("fixed_version", std::string());
                // "0": the release was never affected.
                if (status == "resolved" && !fixed.empty() && fixed != "0")
                    m_database.m_fixes.push_back({"", {cve}, source, fixed});
            }
        }
        return {};
    }

    Result<void> add_osv(const json& record, const std::string& where) {
        if (!record.is_object() || !record.contains("id") || !record["id"].is_string())
            return fail(wrong(where, "is not an OSV record with a string id"));
        const std::string id = record["id"].get<std::string>();
        std::set<std::string> cves;
        if (id.starts_with("CVE-"))
            cves.insert(id);
        for (const char* field : {"aliases", "upstream", "related"})
            if (record.contains(field) && record[field].is_array())
                for (const auto& alias : record[field])
                    if (alias.is_string() && alias.get<std::string>().starts_with("CVE-"))
                        cves.insert(alias.get<std::string>());
        if (!record.contains("affected") || !record["affected"].is_array())
            return {};
        for (const auto& affected : record["affected"]) {
            const auto package = affected.value("package", json::object());
            const auto ecosystem = package.value("ecosystem", std::string());
            const auto name = package.value("name", std::string());
            if (m_sources.count(name) == 0 || (ecosystem != m_ecosystem && ecosystem != "Debian"))
                continue;
            for (const auto& range : affected.value("ranges", json::array())) {
                if (range.value("type", std::string()) != "ECOSYSTEM")
                    continue;
                for (const auto& event : range.value("events", json::array()))
                    if (event.is_object() && event.contains("fixed") && event["fixed"].is_string())
                        m_database.m_fixes.push_back({id,
                                                      {cves.begin(), cves.end()},
                                                      name,
                                                      event["fixed"].get<std::string>()});
            }
        }
        return {};
    }

    const std::string& m_path;
    const std::set<std::string>& m_sources;
    std::string m_codename;
    std::string m_ecosystem;
    AdvisoryDatabase m_database;
};

Result<AdvisoryDatabase> AdvisoryDatabase::load(const std::string& path,
                                                const std::set<std::string>& sources,
                                                const std::string& codename,
                                                const std::string& version_id) {
    return AdvisoryReader(path, sources, codename, version_id).read();
}

std::vector<FixedAdvisory> AdvisoryDatabase::fixed_by(const AdvisoryQuery& query) const {
    std::map<std::string, FixedAdvisory> advisories;
    const std::string grouped = "DEB-" + query.source + "-" + query.new_version;
    for (const Fix& fix : m_fixes) {
        if (fix.source != query.source || !newer(fix.fixed_version, query.installed_version) ||
            newer(fix.fixed_version, query.new_version))
            continue;
        const std::string& id = fix.id.empty() ? grouped : fix.id;
        auto [slot, inserted] =
            advisories.try_emplace(id, FixedAdvisory{id, {}, fix.fixed_version});
        for (const auto& cve : fix.cves)
            if (std::find(slot->second.cves.begin(), slot->second.cves.end(), cve) ==
                slot->second.cves.end())
                slot->second.cves.push_back(cve);
        if (newer(fix.fixed_version, slot->second.fixed_version))
            slot->second.fixed_version = fix.fixed_version;
    }
    std::vector<FixedAdvisory> fixed;
    for (auto& [id, advisory] : advisories) {
        std::sort(advisory.cves.begin(), advisory.cves.end());
        fixed.push_back(std::move(advisory));
    }
    return fixed;
}

}  // namespace pv::patcher::repo
