#pragma once

// Bounds that keep a hostile qcow2 file from making us allocate or read
// absurd amounts (the same limits QEMU's block/qcow2.h applies), and the
// bit layouts of the qcow2 spec that several files share.

#include <cstdint>
#include <string>

namespace pv::img::qcow2 {

inline constexpr uint32_t kMinClusterBits = 9;
inline constexpr uint32_t kMaxClusterBits = 21;
inline constexpr uint64_t kMaxL1Bytes = 32ull << 20;            // QCOW_MAX_L1_SIZE
inline constexpr uint64_t kMaxRefcountTableBytes = 8ull << 20;  // QCOW_MAX_REFTABLE_SIZE
inline constexpr uint64_t kMaxVirtualSize = 1ull << 60;
inline constexpr uint32_t kMaxBackingNameLength = 1023;

// Incompatible feature bits (qcow2 spec, "Header", bytes 72-79).
inline constexpr uint64_t kFeatureDirty = 1ull << 0;
inline constexpr uint64_t kFeatureCorrupt = 1ull << 1;
inline constexpr uint64_t kFeatureExternalData = 1ull << 2;
inline constexpr uint64_t kFeatureCompressionType = 1ull << 3;
inline constexpr uint64_t kFeatureExtendedL2 = 1ull << 4;
inline constexpr uint64_t kKnownIncompatibleFeatures = 0x1f;

// L1 and L2 entries (qcow2 spec, "Cluster mapping").
inline constexpr uint64_t kEntryCopied = 1ull << 63;      // refcount is exactly one
inline constexpr uint64_t kEntryCompressed = 1ull << 62;  // L2 only
inline constexpr uint64_t kL2ZeroFlag = 1ull << 0;        // version 3 only
inline constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ull;

[[nodiscard]] uint64_t l1_entries_for(uint64_t virtual_size, uint32_t cluster_bits);
[[nodiscard]] std::string fmt_hex(const std::string& prefix, uint64_t value);

}  // namespace pv::img::qcow2
