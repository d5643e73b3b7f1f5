#include "patcher/repo/install_order.hpp"

#include "patcher/repo/apt_workspace.hpp"

namespace pv::patcher::repo {

namespace {

class OrderRecorder final : public pkgPackageManager {
  public:
    OrderRecorder(pkgDepCache* cache, const std::map<map_id_t, std::string>& files)
        : pkgPackageManager(cache) {
        for (const auto& [id, file] : files)
            FileNames[id] = file;
    }

    std::vector<pkgCache::PkgIterator> unpacked;
    std::vector<std::string> removed;

  protected:
    bool Install(PkgIterator package, std::string /*file*/) override {
        unpacked.push_back(package);
        return true;
    }
    bool Configure(PkgIterator /*package*/) override { return true; }
    bool Remove(PkgIterator package, bool /*purge*/) override {
        removed.push_back(package.FullName(true));
        return true;
    }
};

}  // namespace

Result<std::vector<pkgCache::PkgIterator>> unpack_order(
    pkgDepCache& cache, const std::map<map_id_t, std::string>& files) {
    OrderRecorder recorder(&cache, files);
    const auto result = recorder.DoInstallPreFork();
    if (result != pkgPackageManager::Completed)
        return fail(make_error("order the installation", apt_failure_reason()));
    if (!recorder.removed.empty())
        return fail(make_error("order the installation",
                               "apt's ordering would remove " + recorder.removed.front()));
    return recorder.unpacked;
}

}  // namespace pv::patcher::repo
