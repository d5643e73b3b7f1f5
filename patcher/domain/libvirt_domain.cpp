#include "patcher/domain/libvirt_domain.hpp"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <cstdlib>

#include <fmt/format.h>

namespace pv::domain {

namespace {

// libvirt prints every error on standard error by default; the job reports
// them itself, once, with what it was doing.
void ignore_error(void*, virErrorPtr) {}

Error libvirt_error(const std::string& operation) {
    const char* message = virGetLastErrorMessage();
    return make_error(operation, message != nullptr ? message : "unknown libvirt error");
}

// Takes ownership of a string libvirt allocated.
std::string take_string(char* text) {
    std::string copy = text != nullptr ? text : "";
    std::free(text);
    return copy;
}

DomainStatus describe(int state, bool managed_save) {
    switch (state) {
        case VIR_DOMAIN_SHUTOFF:
            return {DomainState::ShutOff, "shut off", managed_save};
        case VIR_DOMAIN_RUNNING:
            return {DomainState::Running, "running", managed_save};
        case VIR_DOMAIN_BLOCKED:
            return {DomainState::Running, "running (blocked)", managed_save};
        case VIR_DOMAIN_PAUSED:
            return {DomainState::Paused, "paused", managed_save};
        case VIR_DOMAIN_SHUTDOWN:
            return {DomainState::Other, "shutting down", managed_save};
        case VIR_DOMAIN_CRASHED:
            return {DomainState::Other, "crashed", managed_save};
        case VIR_DOMAIN_PMSUSPENDED:
            return {DomainState::Other, "suspended", managed_save};
        default:
            return {DomainState::Other, "in no known state", managed_save};
    }
}

}  // namespace

void LibvirtDomain::ConnectionCloser::operator()(_virConnect* connection) const {
    virConnectClose(connection);
}

void LibvirtDomain::DomainFreer::operator()(_virDomain* domain) const {
    virDomainFree(domain);
}

LibvirtDomain::~LibvirtDomain() {
    m_domain.reset();  // before the connection it belongs to
}

Result<LibvirtDomain> LibvirtDomain::open(const std::string& uri, const std::string& name) {
    virSetErrorFunc(nullptr, ignore_error);
    LibvirtDomain result;
    result.m_name = name;
    result.m_connection.reset(virConnectOpen(uri.empty() ? nullptr : uri.c_str()));
    if (!result.m_connection)
        return fail(
            libvirt_error(fmt::format("connect to libvirt{}", uri.empty() ? "" : " at " + uri)));
    result.m_uri = take_string(virConnectGetURI(result.m_connection.get()));
    result.m_domain.reset(virDomainLookupByName(result.m_connection.get(), name.c_str()));
    if (!result.m_domain)
        return fail(libvirt_error(fmt::format("find domain {} on {}", name, result.m_uri)));
    return result;
}

Result<std::string> LibvirtDomain::uuid() const {
    char text[VIR_UUID_STRING_BUFLEN] = {};
    if (virDomainGetUUIDString(m_domain.get(), text) != 0)
        return fail(libvirt_error("read the UUID of domain " + m_name));
    return std::string(text);
}

Result<DomainStatus> LibvirtDomain::status() const {
    int state = 0;
    int reason = 0;
    if (virDomainGetState(m_domain.get(), &state, &reason, 0) != 0)
        return fail(libvirt_error("read the state of domain " + m_name));
    const int saved = virDomainHasManagedSaveImage(m_domain.get(), 0);
    if (saved < 0)
        return fail(libvirt_error("ask whether domain " + m_name + " has a managed-save image"));
    return describe(state, saved == 1);
}

Result<std::string> LibvirtDomain::inactive_xml() const {
    char* xml = virDomainGetXMLDesc(m_domain.get(), VIR_DOMAIN_XML_INACTIVE);
    if (xml == nullptr)
        return fail(libvirt_error("read the XML of domain " + m_name));
    return take_string(xml);
}

Result<void> require_shut_off(const std::string& name, const DomainStatus& status) {
    if (status.state != DomainState::ShutOff)
        return fail(make_error(
            "patch domain " + name,
            fmt::format("it is {}; only a shut-off domain's disks are patched (shut it down "
                        "first: virsh shutdown {})",
                        status.description, name)));
    if (status.managed_save)
        return fail(make_error(
            "patch domain " + name,
            fmt::format("it has a managed-save image, and starting it would resume memory "
                        "that predates the patch; start and shut it down, or remove the "
                        "image (virsh managedsave-remove {})",
                        name)));
    return {};
}

}  // namespace pv::domain
