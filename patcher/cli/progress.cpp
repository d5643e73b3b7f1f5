#include "patcher/cli/progress.hpp"

#include <unistd.h>

#include <array>
#include <cstdio>

#include <fmt/format.h>

namespace pv::cli {

ProgressBar::ProgressBar(std::string label)
    : m_label(std::move(label)), m_enabled(::isatty(STDERR_FILENO) == 1) {}

ProgressBar::~ProgressBar() {
    if (m_drawn)
        fmt::print(stderr, "\r\033[K");
}

void ProgressBar::update(uint64_t done, uint64_t total) {
    if (!m_enabled || total == 0)
        return;
    const auto now = std::chrono::steady_clock::now();
    if (m_drawn && done < total && now - m_last_draw < std::chrono::milliseconds(100))
        return;
    m_last_draw = now;
    m_drawn = true;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done / total);
    fmt::print(stderr, "\r\033[K{} [{:=<{}}{: <{}}] {:3}% {} / {}", m_label, "", filled, "",
               kWidth - filled, 100 * done / total, format_bytes(done), format_bytes(total));
    std::fflush(stderr);
}

std::string format_bytes(uint64_t bytes) {
    constexpr std::array<const char*, 5> kUnits = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = static_cast<double>(bytes);
    size_t unit = 0;
    while (value >= 1024 && unit + 1 < kUnits.size()) {
        value /= 1024;
        ++unit;
    }
    if (unit == 0)
        return fmt::format("{} B", bytes);
    return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

}  // namespace pv::cli
