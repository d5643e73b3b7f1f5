#include "vmm/stop_controller.hpp"

namespace pv::vmm {

std::string_view to_string(ExitReason reason) {
    switch (reason) {
        case ExitReason::Reset:
            return "reset";
        case ExitReason::PowerOff:
            return "power-off";
        case ExitReason::Timeout:
            return "timeout";
        case ExitReason::TripleFault:
            return "triple-fault";
        case ExitReason::InternalError:
            return "internal-error";
        case ExitReason::FailEntry:
            return "fail-entry";
        case ExitReason::HostError:
            return "host-error";
        case ExitReason::Stopped:
            return "stopped";
    }
    return "unknown";
}

void StopController::request(ExitReason reason, std::string detail) {
    {
        std::lock_guard lock(m_mutex);
        if (m_stopping.load(std::memory_order_relaxed))
            return;
        m_reason = reason;
        m_detail = std::move(detail);
        m_stopping.store(true, std::memory_order_release);
    }
    m_condition.notify_all();
    if (m_kick)
        m_kick();
}

void StopController::wait() {
    std::unique_lock lock(m_mutex);
    m_condition.wait(lock, [this] { return m_stopping.load(std::memory_order_relaxed); });
}

ExitReason StopController::reason() const {
    std::lock_guard lock(m_mutex);
    return m_reason;
}

std::string StopController::detail() const {
    std::lock_guard lock(m_mutex);
    return m_detail;
}

}  // namespace pv::vmm
