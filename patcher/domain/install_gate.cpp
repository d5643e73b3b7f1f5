#include "patcher/domain/install_gate.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pv::domain {

InstallGate::InstallGate(std::vector<std::string> names, std::function<Result<void>()> recheck)
    : m_names(std::move(names)),
      m_states(m_names.size(), State::Running),
      m_recheck(std::move(recheck)) {}

Result<void> InstallGate::arrive(size_t index) {
    std::unique_lock lock(m_mutex);
    m_states[index] = State::Ready;
    m_changed.notify_all();
    m_changed.wait(lock, [this] {
        return std::none_of(m_states.begin(), m_states.end(),
                            [](State state) { return state == State::Running; });
    });
    if (!m_verdict)
        m_verdict = decide();
    return *m_verdict;
}

void InstallGate::ended(size_t index, bool failed) {
    std::lock_guard lock(m_mutex);
    if (m_states[index] == State::Running)
        m_states[index] = failed ? State::Failed : State::Ended;
    m_changed.notify_all();
}

// Called once, with the mutex held, when no disk's job is still running.
Result<void> InstallGate::decide() {
    std::vector<std::string> failed;
    for (size_t i = 0; i < m_states.size(); ++i)
        if (m_states[i] == State::Failed)
            failed.push_back(m_names[i]);
    if (!failed.empty())
        return fail(make_error(
            "replace the domain's disks",
            fmt::format("disk {} failed, so no disk of the domain is replaced (all or none)",
                        fmt::join(failed, ", "))));
    return m_recheck ? m_recheck() : Result<void>{};
}

}  // namespace pv::domain
