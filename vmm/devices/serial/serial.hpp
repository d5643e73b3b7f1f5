#pragma once

// A 16550A-compatible UART (the "8250" Linux drives) at the COM1 ports,
// complete enough for Linux's 8250 driver: divisor latch, IER, IIR with
// priorities, FCR, LCR, MCR with loopback, LSR, MSR and SCR, and the
// transmitter-holding-register-empty interrupt. Register semantics follow the
// National Semiconductor PC16550D data sheet, tables II-IV. Transmission is
// instantaneous: a byte written to THR goes straight to the output.

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "vmm/bus/bus.hpp"
#include "vmm/devices/interrupt_line.hpp"

namespace pv::vmm {

inline constexpr uint64_t kCom1Port = 0x3f8;
inline constexpr uint32_t kCom1Irq = 4;

class Serial final : public BusDevice {
  public:
    using Output = std::function<void(uint8_t)>;

    Serial(InterruptLine& interrupt, Output output);

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Host-side input (a console); bytes beyond the FIFO size are dropped and
    // flagged as an overrun, as the hardware would.
    void enqueue_input(std::span<const uint8_t> bytes);

  private:
    uint8_t read_register(uint64_t offset);
    void write_register(uint64_t offset, uint8_t value);
    void receive(uint8_t byte);
    [[nodiscard]] uint8_t interrupt_identification() const;
    void update_interrupt();

    std::mutex m_mutex;
    InterruptLine& m_interrupt;
    Output m_output;
    std::deque<uint8_t> m_input;
    bool m_thr_interrupt_pending = false;
    bool m_line_high = false;
    uint8_t m_ier = 0;
    uint8_t m_lcr = 0x03;  // 8N1 after reset
    uint8_t m_mcr = 0x08;  // OUT2 set, as the PC BIOS leaves it
    uint8_t m_lsr = 0x60;  // THR and transmitter empty
    uint8_t m_msr = 0xb0;  // DCD, DSR, CTS asserted: a cable with someone there
    uint8_t m_scr = 0;
    uint8_t m_fcr = 0;
    uint8_t m_divisor_low = 0x0c;  // 9600 baud
    uint8_t m_divisor_high = 0;
};

}  // namespace pv::vmm
