#include "patcher/cli/phase_stats.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pv::cli {

double percentile(const std::vector<double>& values, double fraction) {
    if (values.empty())
        return 0;
    const auto rank = static_cast<size_t>(std::ceil(fraction * values.size()));
    return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

nlohmann::json phase_figures(std::map<std::string, std::vector<double>> seconds) {
    nlohmann::json figures = nlohmann::json::object();
    for (auto& [name, values] : seconds) {
        std::sort(values.begin(), values.end());
        figures[name] = {{"p50", percentile(values, 0.5)}, {"p95", percentile(values, 0.95)}};
    }
    return figures;
}

void print_phase_table(FILE* out, const std::vector<std::string>& order,
                       const nlohmann::json& figures) {
    fmt::print(out, "{:<10} {:>8} {:>8}\n", "phase", "p50 s", "p95 s");
    for (const auto& name : order) {
        const auto& figure = figures.at(name);
        fmt::print(out, "{:<10} {:>8.2f} {:>8.2f}\n", name, figure["p50"].get<double>(),
                   figure["p95"].get<double>());
    }
}

}  // namespace pv::cli
