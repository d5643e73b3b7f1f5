#pragma once

// This process's resources, read from /proc/self: what a leak would grow.

#include <cstdint>
#include <string>
#include <vector>

namespace pv::test {

struct ProcessSample {
    unsigned after_runs = 0;
    unsigned open_fds = 0;  // entries of /proc/self/fd
    unsigned threads = 0;   // "Threads:" of /proc/self/status
    uint64_t rss_kib = 0;   // "VmRSS:"
    // VmRSS again after malloc_trim(0): glibc keeps freed memory in each
    // thread's arena (up to 8 per core), so every job's short-lived threads
    // grow the plain RSS in steps until the arenas are all in use, with or
    // without a leak. Trimmed, what stays is what is still allocated.
    uint64_t trimmed_rss_kib = 0;
};

[[nodiscard]] ProcessSample sample_process(unsigned after_runs);

// Records samples and judges growth between the one taken after the first
// (warm-up) run and the last: fds and threads may not grow at all, RSS by
// at most rss_tolerance_kib (trimmed).
class SoakLog {
  public:
    SoakLog(std::string name, unsigned runs, uint64_t rss_tolerance_kib);

    // Samples after RUNS runs when it is a sampling point (0, 1, every
    // tenth of the total, the last) and prints the sample.
    void after(unsigned runs);

    // "" when nothing grew beyond the tolerance, else what did.
    [[nodiscard]] std::string growth() const;

  private:
    std::string m_name;
    unsigned m_runs;
    uint64_t m_rss_tolerance_kib;
    std::vector<ProcessSample> m_samples;
};

}  // namespace pv::test
