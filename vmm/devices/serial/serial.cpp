#include "vmm/devices/serial/serial.hpp"

namespace pv::vmm {

namespace {

// Register offsets from the base port (PC16550D table II).
constexpr uint64_t kData = 0;             // RBR/THR, DLL when DLAB
constexpr uint64_t kInterruptEnable = 1;  // IER, DLM when DLAB
constexpr uint64_t kInterruptId = 2;      // IIR on read, FCR on write
constexpr uint64_t kLineControl = 3;
constexpr uint64_t kModemControl = 4;
constexpr uint64_t kLineStatus = 5;
constexpr uint64_t kModemStatus = 6;
constexpr uint64_t kScratch = 7;

constexpr uint8_t kIerReceivedData = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIerLineStatus = 0x04;
constexpr uint8_t kIerModemStatus = 0x08;

constexpr uint8_t kIirNoInterrupt = 0x01;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirReceivedData = 0x04;
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirModemStatus = 0x00;
constexpr uint8_t kIirFifoEnabled = 0xc0;

constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearReceive = 0x02;

constexpr uint8_t kLcrDivisorLatch = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoopback = 0x10;

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrErrors = 0x1e;
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrTransmitterEmpty = 0x40;

constexpr uint8_t kMsrDeltas = 0x0f;
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;

constexpr size_t kFifoSize = 16;

}  // namespace

Serial::Serial(InterruptLine& interrupt, Output output)
    : m_interrupt(interrupt), m_output(std::move(output)) {}

void Serial::read(uint64_t offset, std::span<uint8_t> data) {
    // The UART is byte-wide; wider accesses see the register in the low byte.
    std::lock_guard lock(m_mutex);
    std::fill(data.begin(), data.end(), 0);
    if (!data.empty())
        data[0] = read_register(offset);
}

void Serial::write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_mutex);
    if (!data.empty())
        write_register(offset, data[0]);
}

void Serial::enqueue_input(std::span<const uint8_t> bytes) {
    std::lock_guard lock(m_mutex);
    for (uint8_t byte : bytes)
        receive(byte);
    update_interrupt();
}

void Serial::receive(uint8_t byte) {
    if (m_input.size() >= kFifoSize) {
        m_lsr |= kLsrOverrun;
        return;
    }
    m_input.push_back(byte);
    m_lsr |= kLsrDataReady;
}

uint8_t Serial::read_register(uint64_t offset) {
    const bool divisor_latch = m_lcr & kLcrDivisorLatch;
    uint8_t value = 0;
    switch (offset) {
        case kData:
            if (divisor_latch)
                return m_divisor_low;
            if (!m_input.empty()) {
                value = m_input.front();
                m_input.pop_front();
            }
            if (m_input.empty())
                m_lsr &= static_cast<uint8_t>(~kLsrDataReady);
            break;
        case kInterruptEnable:
            return divisor_latch ? m_divisor_high : m_ier;
        case kInterruptId:
            value = interrupt_identification();
            // Reading IIR while it reports THR empty acknowledges that source
            // (PC16550D table IV, "Interrupt Reset Control").
            if ((value & 0x0f) == kIirThrEmpty)
                m_thr_interrupt_pending = false;
            break;
        case kLineControl:
            return m_lcr;
        case kModemControl:
            return m_mcr;
        case kLineStatus:
            value = m_lsr;
            m_lsr &= static_cast<uint8_t>(~kLsrErrors);
            break;
        case kModemStatus:
            if (m_mcr & kMcrLoopback) {
                // Loopback ties DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD; Linux's
                // probe checks exactly this.
                value = static_cast<uint8_t>(
                    ((m_mcr & kMcrDtr) ? kMsrDsr : 0) | ((m_mcr & kMcrRts) ? kMsrCts : 0) |
                    ((m_mcr & kMcrOut1) ? kMsrRi : 0) | ((m_mcr & kMcrOut2) ? kMsrDcd : 0));
            } else {
                value = m_msr;
                m_msr &= static_cast<uint8_t>(~kMsrDeltas);
            }
            break;
        case kScratch:
            return m_scr;
        default:
            return 0xff;
    }
    update_interrupt();
    return value;
}

void Serial::write_register(uint64_t offset, uint8_t value) {
    const bool divisor_latch = m_lcr & kLcrDivisorLatch;
    switch (offset) {
        case kData:
            if (divisor_latch) {
                m_divisor_low = value;
                return;
            }
            if (m_mcr & kMcrLoopback)
                receive(value);
            else if (m_output)
                m_output(value);
            // The byte left at once, so THR is empty again and, if enabled,
            // interrupts once more.
            m_lsr |= kLsrThrEmpty | kLsrTransmitterEmpty;
            m_thr_interrupt_pending = true;
            break;
        case kInterruptEnable:
            if (divisor_latch) {
                m_divisor_high = value;
                return;
            }
            // Enabling the THRE interrupt while THR is empty raises it at once;
            // Linux's transmit path relies on this edge.
            if (!(m_ier & kIerThrEmpty) && (value & kIerThrEmpty) && (m_lsr & kLsrThrEmpty))
                m_thr_interrupt_pending = true;
            m_ier = value & 0x0f;
            break;
        case kInterruptId:
            m_fcr = value & static_cast<uint8_t>(~0x06);
            if (value & kFcrClearReceive) {
                m_input.clear();
                m_lsr &= static_cast<uint8_t>(~kLsrDataReady);
            }
            break;
        case kLineControl:
            m_lcr = value;
            return;
        case kModemControl:
            m_mcr = value & 0x1f;
            break;
        case kScratch:
            m_scr = value;
            return;
        default:
            return;  // LSR and MSR are read-only
    }
    update_interrupt();
}

uint8_t Serial::interrupt_identification() const {
    uint8_t fifo = (m_fcr & kFcrEnable) ? kIirFifoEnabled : 0;
    if ((m_ier & kIerLineStatus) && (m_lsr & kLsrOverrun))
        return fifo | kIirLineStatus;
    if ((m_ier & kIerReceivedData) && (m_lsr & kLsrDataReady))
        return fifo | kIirReceivedData;
    if ((m_ier & kIerThrEmpty) && m_thr_interrupt_pending)
        return fifo | kIirThrEmpty;
    if ((m_ier & kIerModemStatus) && !(m_mcr & kMcrLoopback) && (m_msr & kMsrDeltas))
        return fifo | kIirModemStatus;
    return fifo | kIirNoInterrupt;
}

void Serial::update_interrupt() {
    // The INTR pin is a level: high while any enabled source is pending.
    bool high = !(interrupt_identification() & kIirNoInterrupt);
    if (high != m_line_high) {
        m_line_high = high;
        m_interrupt.set_level(high);
    }
}

}  // namespace pv::vmm
