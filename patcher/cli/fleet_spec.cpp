#include "patcher/cli/fleet_spec.hpp"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patcher/cli/json_file.hpp"

namespace pv::cli {

std::string fleet_spec_path(const std::string& reports) {
    return reports + "/fleet.json";
}

std::string task_report_path(const std::string& reports, size_t index) {
    return fmt::format("{}/task-{}.json", reports, index);
}

std::string task_done_path(const std::string& reports, size_t index) {
    return fmt::format("{}/task-{}.done", reports, index);
}

std::string task_log_path(const std::string& reports, size_t index) {
    return fmt::format("{}/task-{}.log", reports, index);
}

Result<void> write_fleet_spec(const std::string& reports, const FleetSpec& spec) {
    const nlohmann::json json = {{"version", 1},
                                 {"kind", spec.kind == TaskKind::Image ? "image" : "domain"},
                                 {"targets", spec.targets},
                                 {"connect", spec.connect},
                                 {"patch_arguments", spec.patch_arguments},
                                 {"patchvisor", spec.patchvisor},
                                 {"slurm_job", spec.slurm_job}};
    return write_json_file(fleet_spec_path(reports), json);
}

Result<FleetSpec> read_fleet_spec(const std::string& reports) {
    const auto path = fleet_spec_path(reports);
    std::ifstream in(path);
    if (!in)
        return fail(
            make_error("read " + path, "no fleet here (made by `patchvisor fleet submit`)"));
    const auto json = nlohmann::json::parse(in, nullptr, false);
    const auto bad = [&path] { return fail(make_error("read " + path, "not a fleet spec")); };
    if (!json.is_object() || json.value("version", 0) != 1)
        return bad();
    try {
        FleetSpec spec;
        spec.kind =
            json.at("kind").get<std::string>() == "domain" ? TaskKind::Domain : TaskKind::Image;
        spec.targets = json.at("targets").get<std::vector<std::string>>();
        spec.connect = json.value("connect", "");
        spec.patch_arguments = json.value("patch_arguments", std::vector<std::string>{});
        spec.patchvisor = json.value("patchvisor", "");
        spec.slurm_job = json.value("slurm_job", "");
        return spec;
    } catch (const nlohmann::json::exception&) {
        return bad();
    }
}

Result<std::vector<std::string>> read_image_list(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        return fail(make_error("read the image list " + path, "cannot open it"));
    std::vector<std::string> images;
    std::string line;
    for (size_t number = 1; std::getline(in, line); ++number) {
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
            line.pop_back();
        const auto start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#')
            continue;
        images.push_back(std::filesystem::absolute(line.substr(start)).lexically_normal().string());
    }
    if (images.empty())
        return fail(make_error("read the image list " + path, "it names no image"));
    return images;
}

}  // namespace pv::cli
