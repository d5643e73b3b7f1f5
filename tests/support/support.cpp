#include "tests/support/support.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace pv::test {

CommandOutput run(const std::string& command) {
    CommandOutput result;
    const std::string full = command + " 2>&1";
    FILE* pipe = ::popen(full.c_str(), "r");
    if (pipe == nullptr)
        throw std::runtime_error("popen failed for: " + command);
    std::array<char, 4096> buffer{};
    size_t got = 0;
    while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
        result.output.append(buffer.data(), got);
    const int status = ::pclose(pipe);
    if (status != -1 && WIFEXITED(status))
        result.exit_code = WEXITSTATUS(status);
    return result;
}

void must(const std::string& command) {
    const auto result = run(command);
    ASSERT_EQ(result.exit_code, 0) << command << "\n" << result.output;
}

std::string quote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) {
        if (c == '\'')
            quoted += "'\\''";
        else
            quoted += c;
    }
    return quoted + "'";
}

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/pv-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
        throw std::runtime_error("mkdtemp failed for " + pattern);
    m_path = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
}

namespace {

using DigestContext = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

DigestContext sha256_context() {
    DigestContext context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr);
    return context;
}

std::string hex_digest(EVP_MD_CTX* context) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    EVP_DigestFinal_ex(context, digest.data(), &length);
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) {
        static const char* kDigits = "0123456789abcdef";
        hex += kDigits[digest[i] >> 4];
        hex += kDigits[digest[i] & 15];
    }
    return hex;
}

}  // namespace

std::string sha256_of_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return "";
    auto context = sha256_context();
    std::array<char, 1 << 16> buffer{};
    while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0)
        EVP_DigestUpdate(context.get(), buffer.data(), static_cast<size_t>(in.gcount()));
    return hex_digest(context.get());
}

std::string sha256_of_bytes(std::string_view bytes) {
    auto context = sha256_context();
    EVP_DigestUpdate(context.get(), bytes.data(), bytes.size());
    return hex_digest(context.get());
}

std::string built_binary(const std::string& relative) {
    const char* binary_dir = std::getenv("PV_BINARY_DIR");
    if (binary_dir == nullptr)
        throw std::runtime_error("PV_BINARY_DIR is not set; run the tests through ctest");
    return std::string(binary_dir) + "/" + relative;
}

bool have_program(const std::string& name) {
    return run("command -v " + quote(name)).exit_code == 0;
}

}  // namespace pv::test
