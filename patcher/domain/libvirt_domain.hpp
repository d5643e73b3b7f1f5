#pragma once

// The one wrapper of libvirt's C API (libvirt-domain.h): a connection and a
// domain looked up on it, owned by RAII handles, and the facts a patch job
// needs from them — the state, whether a managed-save image exists, and
// the XML the domain will next start from. Every failure is an Error that
// carries libvirt's own message.

#include <memory>
#include <string>

#include "common/error.hpp"

struct _virConnect;
struct _virDomain;

namespace pv::domain {

enum class DomainState { ShutOff, Running, Paused, Other };

struct DomainStatus {
    DomainState state = DomainState::Other;
    std::string description;  // "shut off", "running", "paused", "crashed", ...
    bool managed_save = false;
};

class LibvirtDomain {
  public:
    // Connects to URI (empty: libvirt's default, $LIBVIRT_DEFAULT_URI or its
    // built-in choice) and looks NAME up there.
    [[nodiscard]] static Result<LibvirtDomain> open(const std::string& uri,
                                                    const std::string& name);

    LibvirtDomain(LibvirtDomain&&) noexcept = default;
    LibvirtDomain& operator=(LibvirtDomain&&) noexcept = default;
    ~LibvirtDomain();

    [[nodiscard]] const std::string& name() const { return m_name; }
    [[nodiscard]] const std::string& uri() const { return m_uri; }  // as libvirt names it
    [[nodiscard]] Result<std::string> uuid() const;
    [[nodiscard]] Result<DomainStatus> status() const;
    // The persistent configuration (VIR_DOMAIN_XML_INACTIVE): the disks the
    // domain boots from next time.
    [[nodiscard]] Result<std::string> inactive_xml() const;

  private:
    struct ConnectionCloser {
        void operator()(_virConnect* connection) const;
    };
    struct DomainFreer {
        void operator()(_virDomain* domain) const;
    };
    LibvirtDomain() = default;

    std::unique_ptr<_virConnect, ConnectionCloser> m_connection;
    std::unique_ptr<_virDomain, DomainFreer> m_domain;
    std::string m_name;
    std::string m_uri;
};

// Refuses a domain that is not shut off or that has a managed-save image
// (starting it would resume the saved memory, which knows nothing of the
// patched disk), with what to do about it.
[[nodiscard]] Result<void> require_shut_off(const std::string& name, const DomainStatus& status);

}  // namespace pv::domain
