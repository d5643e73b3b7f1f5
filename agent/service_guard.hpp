#pragma once

// While the guest's package manager runs in the sandbox, no service may
// start there: a daemon started by a maintainer script or an RPM scriptlet
// would run on the copy of the disk, keep its filesystem busy and do, in a
// sandbox, what only the booted VM should do. The guest keeps its own tools:
// the guard only puts small stand-ins in place for the duration and removes
// every trace of them afterwards, so the patched image carries none.
//
// - dpkg: /usr/sbin/policy-rc.d exiting 101 (Debian policy-rc.d interface:
//   "action forbidden"), which invoke-rc.d and deb-systemd-invoke obey.
// - rpm: RPM has no such interface; scriptlets call systemctl or service
//   directly (%systemd_post, %systemd_postun_with_restart, `service x
//   restart`). Each of those the guest has (/usr/bin, /bin, /usr/sbin,
//   /sbin) is moved aside and replaced by a shim that refuses the verbs that
//   start, restart or reload something (it says so on standard error and
//   exits 0, as systemctl itself does when it runs in a chroot) and hands
//   every other verb (enable, preset, daemon-reload...) to the real tool,
//   minus any --now.

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "proto/agent.pb.h"

namespace pv::agent {

// One stand-in at DIRECTORY/NAME, the guest's own file (if any) kept as
// NAME.pv-agent-saved beside it until restore().
class Shim {
  public:
    [[nodiscard]] static Result<Shim> install(Fd directory, const std::string& guest_directory,
                                              const std::string& name, const std::string& text);
    Shim(Shim&& other) noexcept = default;
    Shim& operator=(Shim&&) = delete;
    ~Shim();

    // Removes the stand-in and puts the guest's file back. When the package
    // manager replaced or removed the stand-in meanwhile (an update of
    // systemd itself), its result stays and the saved file, now obsolete,
    // is deleted.
    [[nodiscard]] Result<void> restore();

  private:
    Shim(Fd directory, std::string path, std::string name);
    Fd m_directory;
    std::string m_path;  // the guest path, for messages
    std::string m_name;
    bool m_saved = false;
    dev_t m_device = 0;
    ino_t m_inode = 0;
};

// The stand-ins for MANAGER's runs, in place until restore() (or, without
// a report, destruction).
class ServiceGuard {
  public:
    [[nodiscard]] static Result<ServiceGuard> install(const std::string& root,
                                                      wire::PackageManager manager);
    [[nodiscard]] Result<void> restore();

  private:
    ServiceGuard() = default;
    std::vector<Shim> m_shims;
};

}  // namespace pv::agent
