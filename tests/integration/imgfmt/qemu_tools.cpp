#include "qemu_tools.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "imgfmt/image.hpp"

namespace pv::img::interop {

std::string must_run(const std::string& command) {
    CommandResult result = run(command);
    if (result.exit_code != 0)
        throw std::runtime_error("`" + command + "` failed: " + result.output);
    return result.output;
}

std::vector<std::byte> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + path);
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> bytes(chars.size());
    std::memcpy(bytes.data(), chars.data(), chars.size());
    return bytes;
}

std::vector<std::byte> qemu_raw_view(const std::string& path, const std::string& scratch) {
    must_run("qemu-img convert -O raw " + quote(path) + " " + quote(scratch));
    return read_file(scratch);
}

std::vector<std::byte> our_view(const std::string& path, bool allow_backing) {
    auto image =
        open_image(path, Access::ReadOnly, allow_backing ? Backing::Allow : Backing::Refuse);
    if (!image) {
        ADD_FAILURE() << image.error().message();
        return {};
    }
    std::vector<std::byte> bytes((*image)->size());
    // Odd-sized chunks so that reads start and end inside clusters.
    constexpr size_t kChunk = 3 * 65536 + 4097;
    for (size_t offset = 0; offset < bytes.size(); offset += kChunk) {
        const size_t length = std::min(kChunk, bytes.size() - offset);
        auto read = (*image)->read_at(std::span(bytes.data() + offset, length), offset);
        if (!read) {
            ADD_FAILURE() << read.error().message();
            return {};
        }
    }
    return bytes;
}

long long first_difference(const std::vector<std::byte>& a, const std::vector<std::byte>& b) {
    const size_t common = std::min(a.size(), b.size());
    for (size_t i = 0; i < common; ++i) {
        if (a[i] != b[i])
            return static_cast<long long>(i);
    }
    return a.size() == b.size() ? -1 : static_cast<long long>(common);
}

}  // namespace pv::img::interop
