#include "tests/integration/soak/process_sample.hpp"

#include <malloc.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace pv::test {

namespace {

uint64_t status_field(const std::string& status, const std::string& key) {
    const auto at = status.find("\n" + key + ":");
    if (at == std::string::npos)
        return 0;
    return std::stoull(status.substr(at + key.size() + 2));
}

}  // namespace

ProcessSample sample_process(unsigned after_runs) {
    ProcessSample sample;
    sample.after_runs = after_runs;
    std::error_code error;
    for (auto entry = std::filesystem::directory_iterator("/proc/self/fd", error);
         entry != std::filesystem::directory_iterator(); entry.increment(error))
        ++sample.open_fds;
    --sample.open_fds;  // the directory_iterator's own descriptor
    std::ifstream in("/proc/self/status");
    std::stringstream text;
    text << "\n" << in.rdbuf();
    sample.threads = static_cast<unsigned>(status_field(text.str(), "Threads"));
    sample.rss_kib = status_field(text.str(), "VmRSS");
    ::malloc_trim(0);
    std::ifstream again("/proc/self/status");
    std::stringstream trimmed;
    trimmed << "\n" << again.rdbuf();
    sample.trimmed_rss_kib = status_field(trimmed.str(), "VmRSS");
    return sample;
}

SoakLog::SoakLog(std::string name, unsigned runs, uint64_t rss_tolerance_kib)
    : m_name(std::move(name)), m_runs(runs), m_rss_tolerance_kib(rss_tolerance_kib) {}

void SoakLog::after(unsigned runs) {
    const unsigned step = std::max(1u, m_runs / 10);
    if (runs > 1 && runs != m_runs && runs % step != 0)
        return;
    m_samples.push_back(sample_process(runs));
    const auto& sample = m_samples.back();
    fmt::print(
        "soak {}: after {:4} runs: {:3} fds, {:2} threads, RSS {:6.1f} MiB, {:6.1f} MiB "
        "after malloc_trim\n",
        m_name, runs, sample.open_fds, sample.threads, sample.rss_kib / 1024.0,
        sample.trimmed_rss_kib / 1024.0);
    std::fflush(stdout);
}

std::string SoakLog::growth() const {
    const auto baseline = std::find_if(m_samples.begin(), m_samples.end(),
                                       [](const auto& s) { return s.after_runs == 1; });
    if (baseline == m_samples.end() || m_samples.back().after_runs <= 1)
        return "";
    const auto& last = m_samples.back();
    std::string grown;
    if (last.open_fds > baseline->open_fds)
        grown += fmt::format("fds {} -> {}; ", baseline->open_fds, last.open_fds);
    if (last.threads > baseline->threads)
        grown += fmt::format("threads {} -> {}; ", baseline->threads, last.threads);
    if (last.trimmed_rss_kib > baseline->trimmed_rss_kib + m_rss_tolerance_kib)
        grown += fmt::format("trimmed RSS {} -> {} KiB (tolerance {} KiB)",
                             baseline->trimmed_rss_kib, last.trimmed_rss_kib, m_rss_tolerance_kib);
    return grown;
}

}  // namespace pv::test
