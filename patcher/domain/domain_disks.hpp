#pragma once

// The disks of a libvirt domain, read from its XML (libvirt's domain XML
// format, "Hard drives, floppy disks, CDROMs"): each <devices/disk> with its
// target, its source (source/@file, or source/@dev for a block device), and
// the format its <driver type> declares. The format is taken from the XML,
// never probed from the file: a raw disk whose guest wrote a qcow2 header
// into it stays raw (CVE-2010-3851).

#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "imgfmt/image.hpp"

namespace pv::domain {

enum class SourceKind { File, Block };

struct DomainDisk {
    std::string target;  // target/@dev: vda, sdb, ...
    std::string device;  // disk, cdrom, floppy, lun
    std::string type;    // file, block, network, volume, dir, ...
    std::string source;  // source/@file or source/@dev; "" when none
    SourceKind kind = SourceKind::File;
    std::string driver_type;  // driver/@type as written; "" when absent
    bool readonly = false;
    bool shareable = false;

    // Why the job leaves this disk alone (cdrom, floppy, readonly,
    // shareable), or nullopt for a writable disk, which it must patch.
    [[nodiscard]] std::optional<std::string> skip_reason() const;
};

// Every <disk> under /domain/devices of XML, in document order. NAME names
// the domain in errors.
[[nodiscard]] Result<std::vector<DomainDisk>> parse_domain_disks(const std::string& xml,
                                                                 const std::string& name);

enum class DiskUse { Check, Patch };

// The image format of a writable DISK, or an error that names the disk and
// says why the job cannot take it: no source, not a file or block device, a
// relative path, no or an unsupported driver type, and for USE Patch a
// block device (it cannot be replaced by a rename) or a qcow (version 1)
// disk (the patched image would be qcow2, which the domain would then read
// as qcow).
[[nodiscard]] Result<img::Format> disk_format(const DomainDisk& disk, DiskUse use);

}  // namespace pv::domain
