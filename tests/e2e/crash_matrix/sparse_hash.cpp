#include "tests/e2e/crash_matrix/sparse_hash.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#include <fmt/format.h>

namespace pv::test {

std::string sparse_sha256(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return "";
    struct stat status {};
    ::fstat(fd, &status);
    const off_t size = status.st_size;
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                    &EVP_MD_CTX_free);
    EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr);
    static const std::vector<unsigned char> zeros(1 << 20, 0);
    std::vector<unsigned char> buffer(1 << 20);
    bool ok = true;
    for (off_t at = 0; at < size && ok;) {
        off_t data = ::lseek(fd, at, SEEK_DATA);
        if (data < 0)
            data = size;  // ENXIO: only a hole remains
        for (; at < data; at += std::min<off_t>(data - at, zeros.size()))
            EVP_DigestUpdate(context.get(), zeros.data(),
                             static_cast<size_t>(std::min<off_t>(data - at, zeros.size())));
        off_t hole = ::lseek(fd, at, SEEK_HOLE);
        if (hole < 0)
            hole = size;
        while (at < hole && ok) {
            const auto want = static_cast<size_t>(std::min<off_t>(hole - at, buffer.size()));
            const auto got = ::pread(fd, buffer.data(), want, at);
            ok = got > 0;
            if (ok) {
                EVP_DigestUpdate(context.get(), buffer.data(), static_cast<size_t>(got));
                at += got;
            }
        }
    }
    ::close(fd);
    if (!ok)
        return "";
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned length = 0;
    EVP_DigestFinal_ex(context.get(), digest.data(), &length);
    std::string hex;
    for (unsigned index = 0; index < length; ++index)
        hex += fmt::format("{:02x}", digest[index]);
    return hex;
}

}  // namespace pv::test
