#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "common/error.hpp"

namespace pv::cli {

// Writes JSON, indented, to PATH; an error names the file.
[[nodiscard]] Result<void> write_json_file(const std::string& path, const nlohmann::json& json);

}  // namespace pv::cli
