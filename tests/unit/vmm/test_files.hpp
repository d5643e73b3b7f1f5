#pragma once

// Locating the real images the unit tests check against.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace pv::vmm::test {

inline std::vector<uint8_t> read_whole_file(const std::string& path) {
    std::ifstream stream(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
}

inline std::string testguest_path() {
    const char* binary = std::getenv("PV_BINARY_DIR");
    return std::string(binary ? binary : ".") + "/images/testguest/testguest.elf";
}

inline std::optional<std::string> command_output_line(const std::string& command) {
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe)
        return std::nullopt;
    char line[4096] = {};
    bool got = std::fgets(line, sizeof(line), pipe) != nullptr;
    int status = pclose(pipe);
    if (!got || status != 0)
        return std::nullopt;
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    return text;
}

// The project's sandbox kernel if scripts/images built it, else Debian's
// cloud kernel fetched and cached by debian-bzimage.sh; nullopt if neither.
inline std::optional<std::string> real_bzimage_path() {
    const char* source = std::getenv("PV_SOURCE_DIR");
    std::string root = source ? source : ".";
    if (auto path = command_output_line(root + "/scripts/images path kernel-bzimage 2>/dev/null"))
        return path;
    return command_output_line(root + "/tests/unit/vmm/debian-bzimage.sh");
}

}  // namespace pv::vmm::test

namespace pv::vmm::test {

// Reads a field of a packed boot structure by value: gtest's EXPECT_EQ binds
// references, and a reference to a misaligned packed member is undefined
// behaviour (UBSan flags it).
template <class T>
T copy(T value) {
    return value;
}

}  // namespace pv::vmm::test
