#include "patcher/detect/package_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <mutex>
#include <type_traits>

#include <fmt/format.h>
#include <openssl/evp.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <apt-pkg/debfile.h>
#include <apt-pkg/error.h>
#include <apt-pkg/fileutl.h>
#include <apt-pkg/tagfile.h>
#pragma GCC diagnostic pop

#include <rpm/header.h>
#include <rpm/rpmio.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmts.h>

#include "common/fd.hpp"
#include "patcher/detect/library_setup.hpp"

namespace pv::patcher {
namespace {

// libapt-pkg does not document its archive readers as thread-safe, so the
// catalog reads .deb files one at a time.
std::mutex apt_reader_mutex;

Error bad_package(const std::string& path, std::string detail) {
    return make_error(fmt::format("read package {}", path), std::move(detail));
}

Result<PackageFile> read_deb_fields(const std::string& path) {
    PV_TRY(detail::ensure_apt_ready());
    const std::lock_guard lock(apt_reader_mutex);
    (void)detail::take_apt_errors();  // Nothing stale may be blamed on this file.
    FileFd file;
    if (!file.Open(path, FileFd::ReadOnly))
        return fail(bad_package(path, detail::take_apt_errors()));
    debDebFile deb(file);
    if (_error->PendingError())
        return fail(bad_package(path, "not a Debian package: " + detail::take_apt_errors()));
    debDebFile::MemControlExtract control("control");
    if (!control.Read(deb) || _error->PendingError())
        return fail(
            bad_package(path, "cannot read its control file: " + detail::take_apt_errors()));
    PackageFile package;
    package.family = PackageFamily::deb;
    package.name = control.Section.FindS("Package");
    package.version = control.Section.FindS("Version");
    package.architecture = control.Section.FindS("Architecture");
    return package;
}

struct RpmHeaderFree {
    void operator()(Header header) const { headerFree(header); }
};
struct RpmTransactionFree {
    void operator()(rpmts transaction) const { rpmtsFree(transaction); }
};
struct RpmFileClose {
    void operator()(FD_t file) const { Fclose(file); }
};

std::string rpm_evr(Header header) {
    std::string evr;
    if (headerIsEntry(header, RPMTAG_EPOCH))
        evr = fmt::format("{}:", headerGetNumber(header, RPMTAG_EPOCH));
    const char* version = headerGetString(header, RPMTAG_VERSION);
    const char* release = headerGetString(header, RPMTAG_RELEASE);
    evr += version ? version : "";
    if (release && *release)
        evr += fmt::format("-{}", release);
    return evr;
}

Result<PackageFile> read_rpm_fields(const std::string& path) {
    PV_TRY(detail::ensure_rpm_ready());
    std::unique_ptr<std::remove_pointer_t<FD_t>, RpmFileClose> file(Fopen(path.c_str(), "r.ufdio"));
    if (!file || Ferror(file.get()))
        return fail(bad_package(path, Fstrerror(file.get())));
    std::unique_ptr<std::remove_pointer_t<rpmts>, RpmTransactionFree> transaction(rpmtsCreate());
    rpmtsSetVSFlags(transaction.get(), RPMVSF_MASK_NOSIGNATURES);
    Header raw_header = nullptr;
    const rpmRC status =
        rpmReadPackageFile(transaction.get(), file.get(), path.c_str(), &raw_header);
    std::unique_ptr<std::remove_pointer_t<Header>, RpmHeaderFree> header(raw_header);
    if (status == RPMRC_NOTFOUND)
        return fail(bad_package(path, "not an RPM package"));
    if (status == RPMRC_FAIL || !header)
        return fail(bad_package(path, "corrupt RPM header (librpm rejected it)"));
    if (headerIsSource(header.get()))
        return fail(bad_package(path, "a source RPM, not an installable package"));
    PackageFile package;
    package.family = PackageFamily::rpm;
    const char* name = headerGetString(header.get(), RPMTAG_NAME);
    const char* architecture = headerGetString(header.get(), RPMTAG_ARCH);
    package.name = name ? name : "";
    package.version = rpm_evr(header.get());
    package.architecture = architecture ? architecture : "";
    return package;
}

Result<void> check_fields(const PackageFile& package) {
    for (const auto& [field, value] :
         {std::pair{"name", &package.name}, std::pair{"version", &package.version},
          std::pair{"architecture", &package.architecture}}) {
        if (value->empty())
            return fail(bad_package(package.path, fmt::format("its {} field is missing", field)));
    }
    if (auto valid = check_version(package.family, package.version); !valid)
        return fail(bad_package(package.path, valid.error().message()));
    return {};
}

}  // namespace

std::optional<PackageFamily> family_of_file_name(std::string_view name) {
    if (name.ends_with(".deb"))
        return PackageFamily::deb;
    if (name.ends_with(".rpm"))
        return PackageFamily::rpm;
    return std::nullopt;
}

Result<PackageFile> read_package_file(const std::string& path) {
    const auto family = family_of_file_name(path);
    if (!family)
        return fail(bad_package(path, "not a .deb or .rpm file name"));
    PackageFile package = *family == PackageFamily::deb ? PV_TRY(read_deb_fields(path))
                                                        : PV_TRY(read_rpm_fields(path));
    package.path = path;
    PV_TRY(check_fields(package));
    const FileDigest digest = PV_TRY(sha256_of_file(path));
    package.sha256 = digest.sha256;
    package.size = digest.size;
    return package;
}

Result<FileDigest> sha256_of_file(const std::string& path) {
    const Fd fd = PV_TRY(Fd::open(path, O_RDONLY));
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                    EVP_MD_CTX_free);
    if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1)
        return fail(make_error("sha256 " + path, "OpenSSL digest set-up failed"));
    FileDigest digest;
    std::array<unsigned char, 1 << 16> buffer;
    for (;;) {
        const ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return fail(errno_error("read " + path));
        if (got == 0)
            break;
        EVP_DigestUpdate(context.get(), buffer.data(), static_cast<size_t>(got));
        digest.size += static_cast<uint64_t>(got);
    }
    std::array<unsigned char, EVP_MAX_MD_SIZE> hash;
    unsigned int length = 0;
    EVP_DigestFinal_ex(context.get(), hash.data(), &length);
    for (unsigned int i = 0; i < length; ++i)
        digest.sha256 += fmt::format("{:02x}", hash[i]);
    return digest;
}

}  // namespace pv::patcher
