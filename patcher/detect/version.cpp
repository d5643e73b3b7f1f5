#include "patcher/detect/version.hpp"

#include <cctype>
#include <climits>
#include <memory>
#include <string>

#include <fmt/format.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <apt-pkg/debversion.h>
#pragma GCC diagnostic pop

#include <rpm/rpmver.h>

namespace pv::patcher {
namespace {

Error bad_version(PackageFamily family, std::string_view text, const char* why) {
    return make_error(fmt::format("{} version '{}'", family_name(family), text), why);
}

bool all_digits(std::string_view text) {
    for (char c : text) {
        if (c < '0' || c > '9')
            return false;
    }
    return !text.empty();
}

// The fatal cases of dpkg's parseversion() (lib/dpkg/parse.c); what dpkg
// only warns about (a first character that is not a digit, unusual
// characters) is accepted, as dpkg --compare-versions accepts it.
Result<void> check_debian_version(std::string_view text) {
    constexpr auto family = PackageFamily::deb;
    if (text.empty())
        return fail(bad_version(family, text, "version string is empty"));
    for (unsigned char c : text) {
        if (std::isspace(c) || std::iscntrl(c))
            return fail(
                bad_version(family, text, "version string has blanks or control characters"));
    }
    std::string_view rest = text;
    if (const auto colon = text.find(':'); colon != std::string_view::npos) {
        const std::string_view epoch = text.substr(0, colon);
        if (!all_digits(epoch))
            return fail(bad_version(family, text, "epoch is not a number"));
        if (epoch.size() > 10 || std::stoll(std::string(epoch)) > INT_MAX)
            return fail(bad_version(family, text, "epoch is too big"));
        rest = text.substr(colon + 1);
        if (rest.empty())
            return fail(bad_version(family, text, "nothing after the epoch's colon"));
    }
    if (const auto hyphen = rest.rfind('-'); hyphen != std::string_view::npos) {
        if (hyphen + 1 == rest.size())
            return fail(bad_version(family, text, "revision is empty"));
        if (hyphen == 0)
            return fail(bad_version(family, text, "upstream version is empty"));
    }
    return {};
}

struct RpmVersionFree {
    void operator()(rpmver version) const { rpmverFree(version); }
};
using RpmVersion = std::unique_ptr<std::remove_pointer_t<rpmver>, RpmVersionFree>;

// rpmverParse is pure string parsing and needs no rpm configuration, so
// comparing RPM versions works even where no rpmrc is installed.
Result<RpmVersion> parse_rpm_version(std::string_view text) {
    if (text.empty())
        return fail(bad_version(PackageFamily::rpm, text, "version string is empty"));
    for (unsigned char c : text) {
        if (std::isspace(c) || std::iscntrl(c))
            return fail(bad_version(PackageFamily::rpm, text,
                                    "version string has blanks or control characters"));
    }
    RpmVersion version(rpmverParse(std::string(text).c_str()));
    if (!version)
        return fail(bad_version(PackageFamily::rpm, text,
                                "librpm cannot parse it as [epoch:]version[-release]"));
    return version;
}

}  // namespace

const char* family_name(PackageFamily family) {
    return family == PackageFamily::deb ? "deb" : "rpm";
}

const char* architecture_independent(PackageFamily family) {
    return family == PackageFamily::deb ? "all" : "noarch";
}

Result<void> check_version(PackageFamily family, std::string_view text) {
    if (family == PackageFamily::deb)
        return check_debian_version(text);
    PV_TRY(parse_rpm_version(text));
    return {};
}

Result<int> compare_versions(PackageFamily family, std::string_view a, std::string_view b) {
    if (family == PackageFamily::deb) {
        PV_TRY(check_debian_version(a));
        PV_TRY(check_debian_version(b));
        // debVS needs no apt configuration; it is a pure function of its inputs.
        const int order = debVS.CmpVersion(std::string(a), std::string(b));
        return (order > 0) - (order < 0);
    }
    const RpmVersion first = PV_TRY(parse_rpm_version(a));
    const RpmVersion second = PV_TRY(parse_rpm_version(b));
    const int order = rpmverCmp(first.get(), second.get());
    return (order > 0) - (order < 0);
}

}  // namespace pv::patcher
