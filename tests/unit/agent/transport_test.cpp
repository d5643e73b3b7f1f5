// The vsock port on the kernel command line.

#include <gtest/gtest.h>

#include "agent/transport.hpp"

namespace pv::agent {
namespace {

TEST(Cmdline, FindsPvPort) {
    EXPECT_EQ(*port_from_cmdline("console=ttyS0 pv.port=5000 quiet\n"), 5000u);
    EXPECT_EQ(*port_from_cmdline("pv.port=1"), 1u);
    EXPECT_FALSE(port_from_cmdline("console=ttyS0"));
    EXPECT_FALSE(port_from_cmdline("xpv.port=5"));
    EXPECT_FALSE(port_from_cmdline("pv.port="));
    EXPECT_FALSE(port_from_cmdline("pv.port=12a"));
    EXPECT_FALSE(port_from_cmdline("pv.port=99999999999"));
    EXPECT_FALSE(port_from_cmdline("pv.port=0"));
}

}  // namespace
}  // namespace pv::agent
