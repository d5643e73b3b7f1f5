#pragma once

// The one way a microVM ends: any thread (a vCPU on reset, the event loop on
// timeout, the embedder) calls request(); the first reason wins, the kick hook
// pulls every vCPU out of KVM_RUN, and whoever waits is woken.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "vmm/vm_config.hpp"

namespace pv::vmm {

class StopController {
  public:
    // Installed once before the vCPU threads start.
    void set_kick(std::function<void()> kick) { m_kick = std::move(kick); }

    void request(ExitReason reason, std::string detail);
    [[nodiscard]] bool stopping() const { return m_stopping.load(std::memory_order_acquire); }
    void wait();

    [[nodiscard]] ExitReason reason() const;
    [[nodiscard]] std::string detail() const;

  private:
    mutable std::mutex m_mutex;
    std::condition_variable m_condition;
    std::atomic<bool> m_stopping{false};
    ExitReason m_reason = ExitReason::Stopped;
    std::string m_detail;
    std::function<void()> m_kick;
};

}  // namespace pv::vmm
