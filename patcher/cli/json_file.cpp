#include "patcher/cli/json_file.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

namespace pv::cli {

Result<void> write_json_file(const std::string& path, const nlohmann::json& json) {
    std::ofstream out(path);
    out << json.dump(2) << "\n";
    out.close();
    if (!out)
        return fail(make_error("write the JSON report " + path, "write failed"));
    return {};
}

}  // namespace pv::cli
