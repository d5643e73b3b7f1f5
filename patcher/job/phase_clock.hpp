#pragma once

// Times the job's phases into the report and tells the observer; a phase
// still running when the clock goes away (the job failed in it) is recorded
// as the failed phase.

#include <chrono>
#include <string>

#include "patcher/job/job.hpp"

namespace pv::patcher {

class PhaseClock {
  public:
    PhaseClock(JobObserver& observer, JobReport& report) : m_observer(observer), m_report(report) {}
    PhaseClock(const PhaseClock&) = delete;
    PhaseClock& operator=(const PhaseClock&) = delete;
    ~PhaseClock() {
        if (!m_phase.empty()) {
            m_report.failed_phase = m_phase;
            m_report.phases.push_back({m_phase, elapsed()});
        }
    }

    void start(std::string phase) {
        m_phase = std::move(phase);
        m_started = std::chrono::steady_clock::now();
        m_observer.phase_started(m_phase);
    }

    void finish(const std::string& detail) {
        const PhaseTiming timing{m_phase, elapsed()};
        m_report.phases.push_back(timing);
        m_phase.clear();
        m_observer.phase_finished(timing, detail);
    }

  private:
    [[nodiscard]] double elapsed() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - m_started).count();
    }

    JobObserver& m_observer;
    JobReport& m_report;
    std::string m_phase;
    std::chrono::steady_clock::time_point m_started;
};

}  // namespace pv::patcher
