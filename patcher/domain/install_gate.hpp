#pragma once

// All or none for the disks of one domain. Each disk's job runs on its own
// thread up to the point where its patched target is written and durable
// next to the original (img::CommitOptions::before_install); there it waits
// at the gate until every other disk's job has got as far or has ended.
// Only when none failed, and a last check of the world (the domain is still
// shut off) passes, do they all go on to rename their targets into place;
// otherwise each abandons its target and its original stays as it was.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::domain {

class InstallGate {
  public:
    // NAMES describe each disk in errors ("vda (/vm/a.raw)"); RECHECK runs
    // once, when every disk is ready, and its error stops them all.
    InstallGate(std::vector<std::string> names, std::function<Result<void>()> recheck);

    // Disk INDEX's target is ready: waits for the others and returns
    // whether to install it.
    [[nodiscard]] Result<void> arrive(size_t index);

    // Disk INDEX's job has ended (whether or not it arrived first).
    void ended(size_t index, bool failed);

  private:
    enum class State { Running, Ready, Ended, Failed };
    [[nodiscard]] Result<void> decide();

    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::vector<std::string> m_names;
    std::vector<State> m_states;
    std::function<Result<void>()> m_recheck;
    std::optional<Result<void>> m_verdict;
};

}  // namespace pv::domain
