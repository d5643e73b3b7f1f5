#pragma once

// GuestFiles over the agent's ReadFile (protocol minor 1). The job uses it
// after Inspect and before Stage, when no guest code has run yet, so what
// the agent reads is what the image holds.

#include "patcher/detect/guest_files.hpp"
#include "patcher/session.hpp"

namespace pv::patcher {

class SessionGuestFiles final : public GuestFiles {
  public:
    explicit SessionGuestFiles(Session& session) : m_session(session) {}
    [[nodiscard]] Result<std::optional<std::string>> read(const std::string& path,
                                                          uint64_t limit) override;
    [[nodiscard]] Result<std::vector<std::string>> list(const std::string& path) override;

  private:
    Session& m_session;
};

}  // namespace pv::patcher
