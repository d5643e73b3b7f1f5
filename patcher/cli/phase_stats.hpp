#pragma once

// The throughput figures people benchmark patch runs by, shared by `batch`
// and `fleet status`: nearest-rank percentiles of each phase's seconds.

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace pv::cli {

// Nearest-rank percentile (FRACTION in 0..1) of sorted VALUES; 0 for none.
[[nodiscard]] double percentile(const std::vector<double>& values, double fraction);

// {"PHASE": {"p50": s, "p95": s}, ...} of SECONDS, each phase's durations in
// any order.
[[nodiscard]] nlohmann::json phase_figures(std::map<std::string, std::vector<double>> seconds);

// Prints the phases of FIGURES in ORDER as a table of p50/p95 seconds.
void print_phase_table(FILE* out, const std::vector<std::string>& order,
                       const nlohmann::json& figures);

}  // namespace pv::cli
