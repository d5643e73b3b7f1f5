#include "crafted_images.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace pv::img::test {

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/pv-imgfmt-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
        throw std::runtime_error("mkdtemp " + pattern);
    m_path = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    if (!out)
        throw std::runtime_error("write " + path);
}

void store_be(std::vector<uint8_t>& bytes, size_t offset, uint64_t value, int width) {
    for (int i = width - 1; i >= 0; --i) {
        bytes.at(offset + static_cast<size_t>(i)) = static_cast<uint8_t>(value);
        value >>= 8;
    }
}

std::vector<uint8_t> make_qcow1(const std::string& backing) {
    std::vector<uint8_t> bytes(8192, 0);
    store_be(bytes, 0, 0x514649fb, 4);
    store_be(bytes, 4, 1, 4);
    if (!backing.empty()) {
        store_be(bytes, 8, 48, 8);
        store_be(bytes, 16, backing.size(), 4);
        std::copy(backing.begin(), backing.end(), bytes.begin() + 48);
    }
    store_be(bytes, 24, kCraftedSize, 8);
    bytes[32] = 12;                // cluster_bits
    bytes[33] = 9;                 // l2_bits
    store_be(bytes, 40, 4096, 8);  // l1_table_offset
    return bytes;
}

std::vector<uint8_t> make_qcow2(uint32_t version, const std::string& backing) {
    constexpr uint64_t cluster = 65536;
    std::vector<uint8_t> bytes(4 * cluster, 0);
    store_be(bytes, 0, 0x514649fb, 4);
    store_be(bytes, 4, version, 4);
    if (!backing.empty()) {
        store_be(bytes, 8, 512, 8);
        store_be(bytes, 16, backing.size(), 4);
        std::copy(backing.begin(), backing.end(), bytes.begin() + 512);
    }
    store_be(bytes, 20, 16, 4);  // cluster_bits
    store_be(bytes, 24, kCraftedSize, 8);
    store_be(bytes, 36, 1, 4);            // l1_size
    store_be(bytes, 40, cluster, 8);      // l1_table_offset
    store_be(bytes, 48, 2 * cluster, 8);  // refcount_table_offset
    store_be(bytes, 56, 1, 4);            // refcount_table_clusters
    if (version >= 3) {
        store_be(bytes, 96, 4, 4);     // refcount_order: 16-bit refcounts
        store_be(bytes, 100, 104, 4);  // header_length
    }
    // The refcount table points at the block in cluster 3, which counts
    // clusters 0-3 once each.
    store_be(bytes, 2 * cluster, 3 * cluster, 8);
    for (size_t i = 0; i < 4; ++i)
        store_be(bytes, 3 * cluster + 2 * i, 1, 2);
    return bytes;
}

}  // namespace pv::img::test
