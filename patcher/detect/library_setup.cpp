#include "patcher/detect/library_setup.hpp"

#include <mutex>
#include <string>

// libapt-pkg's headers are not -Werror clean; they are third-party code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <apt-pkg/configuration.h>
#include <apt-pkg/error.h>
#include <apt-pkg/init.h>
#pragma GCC diagnostic pop

#include <rpm/rpmlib.h>
#include <rpm/rpmlog.h>

namespace pv::patcher::detail {

std::string take_apt_errors() {
    std::string text;
    while (!_error->empty()) {
        std::string message;
        _error->PopMessage(message);
        if (!text.empty())
            text += "; ";
        text += message;
    }
    return text;
}

Result<void> ensure_apt_ready() {
    static std::once_flag once;
    static std::string failure;
    std::call_once(once, [] {
        // pkgInitSystem is left out on purpose: it picks the host's own
        // packaging system and fails on hosts without dpkg, while reading a
        // .deb and comparing with debVS need only the configuration.
        // The host's apt.conf and apt.conf.d are not read: what patchvisor
        // does must not depend on them (a host with Acquire::Check-Date
        // "false" would silently accept an expired repository). pkgInitConfig
        // only sets defaults that are not set, so these stay.
        _config->Set("Dir::Etc::main", "/dev/null");
        _config->Set("Dir::Etc::parts", "/dev/null");
        if (!pkgInitConfig(*_config))
            failure = take_apt_errors();
    });
    if (!failure.empty())
        return fail(make_error("initialise libapt-pkg", failure));
    return {};
}

std::mutex& apt_state_mutex() {
    static std::mutex mutex;
    return mutex;
}

Result<void> ensure_rpm_ready() {
    static std::once_flag once;
    static bool failed = false;
    std::call_once(once, [] {
        // Only errors reach standard error; a missing signature key is not
        // news for a catalog that is read, not installed, here.
        rpmlogSetMask(RPMLOG_UPTO(RPMLOG_ERR));
        failed = rpmReadConfigFiles(nullptr, nullptr) != 0;
    });
    if (failed)
        return fail(make_error("initialise librpm", "rpmReadConfigFiles failed"));
    return {};
}

}  // namespace pv::patcher::detail
