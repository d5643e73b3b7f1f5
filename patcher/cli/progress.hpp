#pragma once

// A one-line progress bar on standard error, drawn only when standard error
// is a terminal (logs and pipes get the phase lines alone).

#include <chrono>
#include <cstdint>
#include <string>

namespace pv::cli {

class ProgressBar {
  public:
    explicit ProgressBar(std::string label);
    ~ProgressBar();
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    void update(uint64_t done, uint64_t total);

  private:
    std::string m_label;
    bool m_enabled;
    bool m_drawn = false;
    std::chrono::steady_clock::time_point m_last_draw;
};

// "1.5 GiB", "512 KiB", "17 B".
[[nodiscard]] std::string format_bytes(uint64_t bytes);

}  // namespace pv::cli
