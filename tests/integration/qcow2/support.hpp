#pragma once

// Helpers shared by the qcow2 interop tests: a scratch directory, running
// QEMU's tools, and files of random bytes.

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace pv::img::test {

struct CommandResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
};

inline CommandResult run(const std::string& command) {
    CommandResult result;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr)
        return result;
    char chunk[4096];
    size_t got = 0;
    while ((got = std::fread(chunk, 1, sizeof chunk, pipe)) > 0)
        result.output.append(chunk, got);
    const int status = ::pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

inline std::string quote(const std::string& text) {
    return "'" + text + "'";
}

class ScratchDir {
  public:
    ScratchDir() {
        char name[] = "/tmp/pv-qcow2-interop-XXXXXX";
        if (::mkdtemp(name) != nullptr)
            m_path = name;
    }
    ~ScratchDir() {
        if (!m_path.empty())
            std::filesystem::remove_all(m_path);
    }
    [[nodiscard]] std::string path(const std::string& leaf) const { return m_path + "/" + leaf; }

  private:
    std::string m_path;
};

inline std::vector<std::byte> random_bytes(size_t length, uint64_t seed) {
    std::vector<std::byte> bytes(length);
    std::mt19937_64 random(seed);
    for (size_t i = 0; i < length; i += 8) {
        const uint64_t value = random();
        for (size_t j = 0; j < 8 && i + j < length; ++j)
            bytes[i + j] = static_cast<std::byte>(value >> (8 * j));
    }
    return bytes;
}

inline void write_file(const std::string& path, const std::vector<std::byte>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
}

inline std::vector<std::byte> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> bytes(chars.size());
    std::memcpy(bytes.data(), chars.data(), chars.size());
    return bytes;
}

inline std::string sha256(const std::string& path) {
    const CommandResult result = run("sha256sum " + quote(path));
    return result.output.substr(0, 64);
}

// "qemu-img check" with its exit code: 0 clean, 2 corruption, 3 leaks only.
inline CommandResult qemu_check(const std::string& path) {
    return run("qemu-img check -f qcow2 " + quote(path));
}

}  // namespace pv::img::test
