#pragma once

// `--advisories FILE`: which advisories and CVEs a planned update fixes,
// from one of two dumps (the format is told by the JSON's shape):
//
//  - the Debian security tracker's JSON (security-tracker.debian.org
//    tracker/data/json): {SOURCE: {CVE-ID: {"releases": {CODENAME:
//    {"status": "resolved", "fixed_version": V, ...}}}}}. A CVE is fixed by
//    an update of SOURCE when the guest's codename has it resolved at a
//    fixed_version newer than the installed source version and not newer
//    than the planned one. The CVEs of one update form one advisory, named
//    DEB-SOURCE-VERSION (the tracker's JSON has no DSA ids).
//  - OSV (osv.dev's Debian records, DSA-/DLA-/DEBIAN-CVE-*): one record, a
//    JSON array of records, or a directory of *.json records. A record is
//    fixed by an update of SOURCE when an "affected" entry names SOURCE in
//    ecosystem "Debian:VERSION_ID" (or plain "Debian") with an ECOSYSTEM
//    range whose "fixed" event is newer than the installed source version
//    and not newer than the planned one. Its CVEs are the CVE-* ids among
//    "aliases", "upstream" and "related".
//
// Only the sources of the plan are kept while reading, so a full tracker
// dump (tens of MiB) does not become a DOM of its own size.

#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "patcher/detect/detect.hpp"

namespace pv::patcher::repo {

struct AdvisoryQuery {
    std::string source;             // source package name
    std::string installed_version;  // source version installed
    std::string new_version;        // source version planned
};

class AdvisoryDatabase {
  public:
    // Reads PATH, keeping what concerns SOURCES for the guest's CODENAME
    // and VERSION_ID (os-release). Errors name the file and the problem.
    [[nodiscard]] static Result<AdvisoryDatabase> load(const std::string& path,
                                                       const std::set<std::string>& sources,
                                                       const std::string& codename,
                                                       const std::string& version_id);

    [[nodiscard]] std::vector<FixedAdvisory> fixed_by(const AdvisoryQuery& query) const;
    [[nodiscard]] const std::string& format() const { return m_format; }
    [[nodiscard]] size_t size() const { return m_fixes.size(); }

  private:
    // One (advisory, source, fixed version) as read from the dump.
    struct Fix {
        std::string id;  // OSV id; empty for the tracker (grouped per update)
        std::vector<std::string> cves;
        std::string source;
        std::string fixed_version;
    };
    std::string m_format;
    std::vector<Fix> m_fixes;

    friend class AdvisoryReader;
};

}  // namespace pv::patcher::repo
