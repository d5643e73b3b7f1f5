#include "vmm/devices/serial/serial.hpp"

#include <gtest/gtest.h>

#include <string>

#include "vmm/devices/i8042/i8042.hpp"

namespace pv::vmm {
namespace {

struct RecordingLine : InterruptLine {
    bool high = false;
    int edges = 0;
    void set_level(bool level) override {
        if (level && !high)
            ++edges;
        high = level;
    }
};

struct SerialTest : ::testing::Test {
    RecordingLine line;
    std::string output;
    Serial serial{line, [this](uint8_t byte) { output.push_back(static_cast<char>(byte)); }};

    uint8_t in(uint64_t offset) {
        uint8_t value = 0;
        serial.read(offset, {&value, 1});
        return value;
    }
    void out(uint64_t offset, uint8_t value) { serial.write(offset, {&value, 1}); }
};

TEST_F(SerialTest, ThrWritesReachTheOutputAndLsrStaysReady) {
    out(0, 'h');
    out(0, 'i');
    EXPECT_EQ(output, "hi");
    EXPECT_EQ(in(5) & 0x60, 0x60) << "THRE and TEMT";
    EXPECT_EQ(in(2), 0x01) << "no interrupt while IER is 0";
    EXPECT_FALSE(line.high);
}

TEST_F(SerialTest, EnablingThreInterruptRaisesIrqAndIirReadAcknowledges) {
    out(1, 0x02);
    EXPECT_TRUE(line.high);
    EXPECT_EQ(in(2), 0x02) << "IIR: THR empty";
    EXPECT_FALSE(line.high) << "reading IIR acknowledges THRE";
    EXPECT_EQ(in(2), 0x01);
    out(0, 'x');  // transmitting empties THR again: a new THRE interrupt
    EXPECT_TRUE(line.high);
    EXPECT_EQ(line.edges, 2);
    out(1, 0x00);
    EXPECT_FALSE(line.high) << "disabling the source drops the line";
}

TEST_F(SerialTest, DivisorLatchSwapsRegisters) {
    out(3, 0x80);
    out(0, 0x01);
    out(1, 0x00);
    EXPECT_EQ(in(0), 0x01);
    EXPECT_TRUE(output.empty()) << "DLL writes are not data";
    out(3, 0x03);
    EXPECT_EQ(in(1), 0x00) << "IER back";
    EXPECT_EQ(in(3), 0x03);
}

TEST_F(SerialTest, LoopbackEchoesDataAndModemLines) {
    out(4, 0x10 | 0x0a);  // loopback, RTS, OUT2: what Linux's probe writes
    EXPECT_EQ(in(6) & 0xf0, 0x90) << "CTS and DCD";
    out(0, 'z');
    EXPECT_TRUE(output.empty());
    EXPECT_EQ(in(5) & 0x01, 0x01) << "data ready";
    EXPECT_EQ(in(0), 'z');
    EXPECT_EQ(in(5) & 0x01, 0x00);
}

TEST_F(SerialTest, ReceivedDataInterruptsAndOverrunIsReported) {
    out(1, 0x01 | 0x04);
    std::string input(20, 'a');
    serial.enqueue_input({reinterpret_cast<const uint8_t*>(input.data()), input.size()});
    EXPECT_TRUE(line.high);
    EXPECT_EQ(in(2), 0x06) << "line status (overrun) outranks received data";
    EXPECT_EQ(in(5) & 0x03, 0x03) << "DR and OE";
    EXPECT_EQ(in(5) & 0x02, 0x00) << "reading LSR clears OE";
    EXPECT_EQ(in(2), 0x04) << "then received data";
    for (int index = 0; index < 16; ++index)
        EXPECT_EQ(in(0), 'a');
    EXPECT_FALSE(line.high);
    EXPECT_EQ(in(0), 0) << "empty FIFO reads 0";
}

TEST_F(SerialTest, FifoEnableShowsInIirAndScratchHoldsItsValue) {
    out(2, 0x01);
    EXPECT_EQ(in(2), 0xc1);
    out(7, 0x5a);
    EXPECT_EQ(in(7), 0x5a);
    uint8_t wide[4] = {0xff, 0xff, 0xff, 0xff};
    serial.read(7, wide);
    EXPECT_EQ(wide[0], 0x5a);
    EXPECT_EQ(wide[1], 0);
}

TEST(I8042, PulseResetCommandCallsBackOnlyForFeOnPort64) {
    int resets = 0;
    I8042 controller([&] { ++resets; });
    uint8_t value = 0xfe;
    controller.write(0, {&value, 1});
    EXPECT_EQ(resets, 0) << "0xfe on the data port is not a command";
    value = 0xd1;
    controller.write(4, {&value, 1});
    EXPECT_EQ(resets, 0);
    value = 0xfe;
    controller.write(4, {&value, 1});
    EXPECT_EQ(resets, 1);
}

// Linux's i8042 driver first drains the output buffer (at most 16 bytes);
// one that never empties means "No controller found", so it sends no
// command and waits for no answer. The input buffer is empty, so reboot=k
// writes its 0xfe at once.
TEST(I8042, StatusSaysNoControllerYetAcceptsCommandsAtOnce) {
    I8042 controller([] {});
    for (int read = 0; read < 17; ++read) {
        uint8_t status = 0;
        controller.read(4, {&status, 1});
        EXPECT_EQ(status & 0x01, 0x01) << "output buffer full";
        EXPECT_EQ(status & 0x02, 0) << "input buffer empty";
        uint8_t data = 0;
        controller.read(0, {&data, 1});
        EXPECT_EQ(data, 0xff);
    }
}

}  // namespace
}  // namespace pv::vmm
