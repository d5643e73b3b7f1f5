#pragma once

// A patch or check job on a libvirt domain: the domain must be
// shut off with no managed-save image; its writable disks come from its
// XML with the formats the XML declares; each is one patch job, and in
// Patch mode they are replaced all or none (install_gate.hpp).
//
// What keeps the domain from starting meanwhile is the lock each disk's job
// holds on its image from its first phase to its last (imgfmt/lock.hpp): an
// exclusive OFD lock, which conflicts with QEMU's own image locks (so a
// `virsh start` of a QEMU domain fails to open the disk) and with the
// fcntl locks of libvirt's virtlockd lock manager when it is configured.
// Just before the renames, with every disk locked, the domain's state is
// read again; if it is no longer shut off nothing is replaced.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "patcher/domain/domain_disks.hpp"
#include "patcher/job/job.hpp"

namespace pv::domain {

struct DomainJobResult;

struct DomainJobRequest {
    std::string uri;  // "" for libvirt's default
    std::string name;
    patcher::JobMode mode = patcher::JobMode::Patch;
    // The job options for one disk's image path (flags, catalog, agent...).
    std::function<Result<patcher::JobOptions>(const std::string& image)> options_for;
    // The observer of one disk's job; called before the jobs start.
    std::function<std::unique_ptr<patcher::JobObserver>(const DomainDisk&)> observer_for;
    // Hears the domain's disks, and which are left alone, before the jobs.
    std::function<void(const DomainJobResult&)> planned;
};

struct DiskOutcome {
    DomainDisk disk;
    std::optional<std::string> skipped;        // why the job left it alone
    std::optional<patcher::JobReport> report;  // for every disk not skipped
};

struct DomainJobResult {
    std::string name;
    std::string uuid;
    std::string uri;
    std::vector<DiskOutcome> disks;

    // Some disk was replaced and another failed: only a failure in the
    // renames themselves leaves a domain so (see README "libvirt domains").
    [[nodiscard]] bool partly_replaced() const;
};

// Fails before any job starts (bad domain, wrong state, a disk the job
// cannot take); otherwise every writable disk has its report.
[[nodiscard]] Result<DomainJobResult> run_domain_job(const DomainJobRequest& request);

}  // namespace pv::domain
