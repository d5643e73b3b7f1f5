// Staged file names: only plain names of package files reach the guest.

#include <gtest/gtest.h>

#include <string>

#include "agent/staging.hpp"

namespace pv::agent {
namespace {

TEST(Staging, AcceptsOnlySafeFileNames) {
    for (const char* good : {"libssl3_3.0.22-1~deb12u2_amd64.deb",
                             "openssl-3.0.7-27.el9.x86_64.rpm", "bsdutils_1%3a2.38.1-5_amd64.deb"})
        EXPECT_TRUE(is_safe_file_name(good)) << good;
    for (const char* bad :
         {"", ".", "..", "../x.deb", "a/b.deb", ".hidden", "-rf", "a b.deb", "a\nb", "x\x01"})
        EXPECT_FALSE(is_safe_file_name(bad)) << bad;
    EXPECT_FALSE(is_safe_file_name(std::string(201, 'a')));
}

}  // namespace
}  // namespace pv::agent
