#include "patcher/detect/manifest.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pv::patcher {
namespace {

using Json = nlohmann::json;

// Walks the document keeping the JSON path of where it is, so every
// complaint says exactly which value is wrong.
class ManifestReader {
  public:
    explicit ManifestReader(const std::string& label) : m_label(label) {}

    Result<std::vector<Advisory>> read(const Json& document) {
        if (!document.is_object())
            return fail(problem("the manifest", "must be a JSON object"));
        const Json& list = *PV_TRY(member(document, "", "advisories", Kind::array));
        std::vector<Advisory> advisories;
        for (size_t i = 0; i < list.size(); ++i)
            advisories.push_back(PV_TRY(read_advisory(list[i], fmt::format("advisories[{}]", i))));
        return advisories;
    }

  private:
    enum class Kind { string, array, object };

    static const char* kind_name(Kind kind) {
        switch (kind) {
            case Kind::string:
                return "a string";
            case Kind::array:
                return "an array";
            case Kind::object:
                return "an object";
        }
        return "?";
    }

    static bool has_kind(const Json& value, Kind kind) {
        switch (kind) {
            case Kind::string:
                return value.is_string() && !value.get_ref<const std::string&>().empty();
            case Kind::array:
                return value.is_array();
            case Kind::object:
                return value.is_object();
        }
        return false;
    }

    Error problem(const std::string& where, const std::string& what) const {
        return make_error(m_label, fmt::format("{} {}", where, what));
    }

    static std::string join(const std::string& path, const std::string& key) {
        return path.empty() ? key : path + "." + key;
    }

    Result<void> expect(const Json& value, const std::string& path, Kind kind) const {
        if (has_kind(value, kind))
            return {};
        if (kind == Kind::string && value.is_string())
            return fail(problem(path, "must not be empty"));
        return fail(problem(path, fmt::format("must be {}", kind_name(kind))));
    }

    Result<const Json*> member(const Json& object, const std::string& path, const char* key,
                               Kind kind) const {
        const auto found = object.find(key);
        if (found == object.end())
            return fail(problem(join(path, key), "is missing"));
        PV_TRY(expect(*found, join(path, key), kind));
        return &*found;
    }

    Result<Advisory> read_advisory(const Json& value, const std::string& path) const {
        PV_TRY(expect(value, path, Kind::object));
        Advisory advisory;
        advisory.id = PV_TRY(member(value, path, "id", Kind::string))->get<std::string>();
        if (value.contains("cves")) {
            const Json& cves = *PV_TRY(member(value, path, "cves", Kind::array));
            for (size_t i = 0; i < cves.size(); ++i) {
                PV_TRY(expect(cves[i], fmt::format("{}.cves[{}]", path, i), Kind::string));
                advisory.cves.push_back(cves[i].get<std::string>());
            }
        }
        const Json& packages = *PV_TRY(member(value, path, "packages", Kind::array));
        for (size_t i = 0; i < packages.size(); ++i) {
            const std::string where = fmt::format("{}.packages[{}]", path, i);
            PV_TRY(expect(packages[i], where, Kind::object));
            AdvisoryPackage package;
            package.name =
                PV_TRY(member(packages[i], where, "name", Kind::string))->get<std::string>();
            package.fixed_version =
                PV_TRY(member(packages[i], where, "fixed_version", Kind::string))
                    ->get<std::string>();
            advisory.packages.push_back(std::move(package));
        }
        return advisory;
    }

    const std::string& m_label;
};

}  // namespace

Result<std::vector<Advisory>> parse_manifest(std::string_view text, const std::string& label) {
    Json document;
    try {
        document = Json::parse(text);
    } catch (const Json::exception& error) {
        // Not only parse_error: a number too large for a double throws
        // out_of_range (found by tests/fuzz/manifest).
        return fail(make_error(label, fmt::format("not valid JSON: {}", error.what())));
    }
    return ManifestReader(label).read(document);
}

}  // namespace pv::patcher
