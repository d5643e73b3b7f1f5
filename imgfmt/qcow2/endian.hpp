#pragma once

// qcow2 stores every integer big-endian (qcow2 spec, "General": "All numbers
// in qcow2 are stored in Big Endian byte order").

#include <endian.h>

#include <cstdint>
#include <cstring>

namespace pv::img::qcow2 {

[[nodiscard]] inline uint64_t load_be64(const uint8_t* bytes) {
    uint64_t value;
    std::memcpy(&value, bytes, sizeof value);
    return be64toh(value);
}

[[nodiscard]] inline uint32_t load_be32(const uint8_t* bytes) {
    uint32_t value;
    std::memcpy(&value, bytes, sizeof value);
    return be32toh(value);
}

[[nodiscard]] inline uint16_t load_be16(const uint8_t* bytes) {
    uint16_t value;
    std::memcpy(&value, bytes, sizeof value);
    return be16toh(value);
}

inline void store_be64(uint8_t* bytes, uint64_t value) {
    value = htobe64(value);
    std::memcpy(bytes, &value, sizeof value);
}

inline void store_be32(uint8_t* bytes, uint32_t value) {
    value = htobe32(value);
    std::memcpy(bytes, &value, sizeof value);
}

inline void store_be16(uint8_t* bytes, uint16_t value) {
    value = htobe16(value);
    std::memcpy(bytes, &value, sizeof value);
}

}  // namespace pv::img::qcow2
