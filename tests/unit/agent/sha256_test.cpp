// The agent's own SHA-256 against the FIPS 180-2 examples and OpenSSL.

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <random>

#include "agent/sha256.hpp"

namespace pv::agent {
namespace {

std::string hex(const std::string& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string sha256_of(const std::string& data) {
    Sha256 hash;
    hash.update(data.data(), data.size());
    return hash.finish();
}

TEST(Sha256, MatchesPublishedExamples) {
    EXPECT_EQ(hex(sha256_of("")),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hex(sha256_of("abc")),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hex(sha256_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, MatchesOpenSslForEveryLengthAndSplit) {
    std::mt19937 random(7);
    for (size_t length : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 100000}) {
        std::string data(length, '\0');
        for (auto& c : data)
            c = static_cast<char>(random());
        unsigned char expected[SHA256_DIGEST_LENGTH];
        SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), expected);
        // Fed in uneven pieces, as chunks arrive.
        Sha256 hash;
        size_t done = 0;
        while (done < data.size()) {
            const size_t piece = std::min<size_t>(data.size() - done, 1 + random() % 97);
            hash.update(data.data() + done, piece);
            done += piece;
        }
        EXPECT_EQ(hash.finish(), std::string(reinterpret_cast<char*>(expected), sizeof expected))
            << length;
    }
}

}  // namespace
}  // namespace pv::agent
