#include "patcher/detect/patch_source.hpp"

#include <optional>

#include <fmt/format.h>

namespace pv::patcher {

namespace {

class CatalogSource final : public PatchSource {
  public:
    explicit CatalogSource(std::string directory) : m_directory(std::move(directory)) {}

    Result<std::string> load() override {
        m_catalog = PV_TRY(load_catalog(m_directory, CatalogPolicy::strict));
        return fmt::format("{} package files, {} advisories", m_catalog->packages.size(),
                           m_catalog->advisories.size());
    }

    Result<Detection> detect(const GuestView& guest) override {
        if (!m_catalog)
            return fail(make_error("detect", "the catalog was not loaded"));
        return detect_patches(guest.family, guest.installed, *m_catalog);
    }

    std::string describe() const override { return "catalog " + m_directory; }

  private:
    std::string m_directory;
    std::optional<Catalog> m_catalog;
};

}  // namespace

std::unique_ptr<PatchSource> make_catalog_source(std::string directory) {
    return std::make_unique<CatalogSource>(std::move(directory));
}

}  // namespace pv::patcher
