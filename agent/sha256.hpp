#pragma once

// SHA-256 (FIPS 180-4) for verifying staged files. Written out here because
// linking libcrypto statically for this one hash more than doubled the size
// of the agent; tests check it against OpenSSL.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace pv::agent {

class Sha256 {
  public:
    Sha256();
    void update(const void* data, size_t size);
    // The 32-byte digest; the object must not be updated afterwards.
    [[nodiscard]] std::string finish();

  private:
    void compress(const uint8_t* block);

    std::array<uint32_t, 8> m_state;
    std::array<uint8_t, 64> m_buffer{};
    size_t m_buffered = 0;
    uint64_t m_length = 0;
};

}  // namespace pv::agent
