#pragma once

// virtio-blk (virtio 1.2 §5.2) over an imgfmt BlockDevice, normally the
// qcow2 overlay of the image being patched. One request queue. Each request
// is checked before it touches the backend (header size, buffer directions,
// sector range with overflow-safe arithmetic) and answered with a status
// byte; a chain too broken to carry a status is returned with length 0.

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/access.hpp"
#include "imgfmt/block_device.hpp"
#include "vmm/devices/block/block_request.hpp"
#include "vmm/virtio/device.hpp"

namespace pv::vmm {

// §5.2.3: feature bits this device offers.
inline constexpr uint64_t kBlockFeatureSegmentMax = uint64_t{1} << 2;
inline constexpr uint64_t kBlockFeatureReadOnly = uint64_t{1} << 5;
inline constexpr uint64_t kBlockFeatureBlockSize = uint64_t{1} << 6;
inline constexpr uint64_t kBlockFeatureFlush = uint64_t{1} << 9;
inline constexpr uint64_t kBlockFeatureDiscard = uint64_t{1} << 13;
inline constexpr uint64_t kBlockFeatureWriteZeroes = uint64_t{1} << 14;

// §5.2.6: request types and status values.
inline constexpr uint32_t kBlockRequestIn = 0;
inline constexpr uint32_t kBlockRequestOut = 1;
inline constexpr uint32_t kBlockRequestFlush = 4;
inline constexpr uint32_t kBlockRequestGetId = 8;
inline constexpr uint32_t kBlockRequestDiscard = 11;
inline constexpr uint32_t kBlockRequestWriteZeroes = 13;
inline constexpr uint8_t kBlockStatusOk = 0;
inline constexpr uint8_t kBlockStatusIoError = 1;
inline constexpr uint8_t kBlockStatusUnsupported = 2;

inline constexpr uint64_t kSectorSize = 512;
inline constexpr size_t kBlockIdLength = 20;  // §5.2.6: GET_ID answers 20 bytes

struct BlockOptions {
    Access access = Access::ReadWrite;
    std::string id = "patchvisor";  // GET_ID, truncated to 20 bytes
    uint16_t queue_size = 256;
};

class VirtioBlock final : public virtio::VirtioDevice {
  public:
    VirtioBlock(std::unique_ptr<img::BlockDevice> backend, BlockOptions options);

    [[nodiscard]] uint32_t device_type() const override { return virtio::kDeviceIdBlock; }
    [[nodiscard]] std::vector<uint16_t> queue_max_sizes() const override;
    [[nodiscard]] uint64_t device_features() const override;
    void read_config(uint64_t offset, std::span<uint8_t> data) const override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    [[nodiscard]] Result<void> activate(uint64_t acked_features, std::vector<virtio::Queue> queues,
                                        virtio::Interrupt& interrupt) override;
    void reset() override;
    void queue_notify(uint16_t queue) override;

    [[nodiscard]] bool read_only() const { return m_read_only; }
    // The backend, for the owner to flush or close after the VM ends.
    [[nodiscard]] img::BlockDevice& backend() { return *m_backend; }

    // Executes one parsed chain and returns the bytes written into its
    // device-writable buffers (§2.7.8 used length), status byte included.
    // A request not carried out counts in fault_counts().
    [[nodiscard]] uint32_t process(const virtio::DescriptorChain& chain, const GuestMemory& memory);

    // How many requests failed, by BlockFault.
    [[nodiscard]] std::array<uint64_t, kBlockFaultCount> fault_counts() const;

  private:
    std::unique_ptr<img::BlockDevice> m_backend;
    BlockOptions m_options;
    bool m_read_only;
    std::array<uint8_t, 60> m_config{};  // struct virtio_blk_config, §5.2.4
    std::array<std::atomic<uint64_t>, kBlockFaultCount> m_faults{};

    std::mutex m_mutex;  // guards the activation state
    std::optional<virtio::Queue> m_queue;
    virtio::Interrupt* m_interrupt = nullptr;
};

}  // namespace pv::vmm
