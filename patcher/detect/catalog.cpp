#include "patcher/detect/catalog.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "common/fd.hpp"

namespace pv::patcher {
namespace {

// A manifest is a few KiB; anything this large is not one.
constexpr uint64_t kMaxManifestSize = uint64_t{16} * 1024 * 1024;

Result<std::vector<std::string>> package_file_names(const std::string& directory) {
    std::error_code error;
    std::filesystem::directory_iterator entries(directory, error);
    if (error)
        return fail(errno_error("read catalog directory " + directory, error.value()));
    std::vector<std::string> names;
    for (const auto& entry : entries) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with(".") || !family_of_file_name(name))
            continue;
        // A symlink to a regular file counts: catalogs are often assembled
        // from a shared download cache.
        if (!entry.is_regular_file(error))
            continue;
        names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

Result<std::string> read_small_file(const std::string& path, uint64_t limit) {
    const Fd fd = PV_TRY(Fd::open(path, O_RDONLY));
    struct stat status {};
    if (::fstat(fd.get(), &status) != 0)
        return fail(errno_error("stat " + path));
    if (!S_ISREG(status.st_mode))
        return fail(make_error("read " + path, "not a regular file"));
    if (static_cast<uint64_t>(status.st_size) > limit)
        return fail(make_error("read " + path, fmt::format("larger than {} bytes", limit)));
    std::string text(static_cast<size_t>(status.st_size), '\0');
    PV_TRY(pread_all(fd.get(), text.data(), text.size(), 0, "read " + path));
    return text;
}

Result<std::vector<Advisory>> read_manifest(const std::string& directory) {
    const std::string path = directory + "/manifest.json";
    std::error_code error;
    if (!std::filesystem::exists(path, error))
        return std::vector<Advisory>{};
    const std::string text = PV_TRY(read_small_file(path, kMaxManifestSize));
    return parse_manifest(text, path);
}

Error problems_error(const Catalog& catalog) {
    std::string detail = fmt::format("{} package file(s) cannot be read:", catalog.problems.size());
    for (const CatalogProblem& problem : catalog.problems)
        detail += "\n  " + problem.message;
    return make_error("read catalog " + catalog.directory, detail);
}

}  // namespace

Result<Catalog> load_catalog(const std::string& directory, CatalogPolicy policy) {
    Catalog catalog;
    catalog.directory = directory;
    catalog.advisories = PV_TRY(read_manifest(directory));
    for (const std::string& name : PV_TRY(package_file_names(directory))) {
        const std::string path = directory + "/" + name;
        auto package = read_package_file(path);
        if (package)
            catalog.packages.push_back(std::move(*package));
        else
            catalog.problems.push_back(CatalogProblem{path, package.error().message()});
    }
    if (policy == CatalogPolicy::strict && !catalog.problems.empty())
        return fail(problems_error(catalog));
    return catalog;
}

}  // namespace pv::patcher
