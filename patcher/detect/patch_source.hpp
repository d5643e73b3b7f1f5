#pragma once

// Where a job's patches come from: the folder catalog (here) or a signed
// package repository resolved by the distribution's own solver
// (patcher/repo/). The job drives every source alike:
//   load()                 before the sandbox ("catalog" phase): what can be
//                          read without the guest
//   prepare(guest)         after Inspect ("indexes" phase, only when
//                          uses_guest_files()): indexes fetched and verified
//   detect(guest)          the plan ("detect" phase)
// An RPM repository (rpm-md + libsolv) is meant to be one more source.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "patcher/detect/catalog.hpp"
#include "patcher/detect/detect.hpp"
#include "patcher/detect/guest_files.hpp"

namespace pv::patcher {

// What the job knows about the guest when it asks for a plan.
struct GuestView {
    PackageFamily family = PackageFamily::deb;
    const std::vector<InstalledPackage>& installed;
    const std::map<std::string, std::string>& os_release;
    GuestFiles& files;
};

class PatchSource {
  public:
    virtual ~PatchSource() = default;
    // A line for the "catalog" phase, e.g. "2 package files, 1 advisories".
    [[nodiscard]] virtual Result<std::string> load() = 0;
    [[nodiscard]] virtual bool uses_guest_files() const { return false; }
    // A line for the "indexes" phase.
    [[nodiscard]] virtual Result<std::string> prepare(const GuestView& /*guest*/) {
        return std::string();
    }
    [[nodiscard]] virtual Result<Detection> detect(const GuestView& guest) = 0;
    // Where the source's files live: "catalog DIR", "repository URI".
    [[nodiscard]] virtual std::string describe() const = 0;
};

// The folder catalog (catalog.hpp) with detect_patches().
[[nodiscard]] std::unique_ptr<PatchSource> make_catalog_source(std::string directory);

}  // namespace pv::patcher
