#include "patcher/file_digest.hpp"

#include <openssl/evp.h>

#include <fstream>
#include <memory>
#include <vector>

namespace pv::patcher {

Result<FileDigest> digest_file(const std::filesystem::path& file, size_t buffer_size) {
    std::ifstream in(file, std::ios::binary);
    if (!in)
        return fail(errno_error("open " + file.string()));
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> hash(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(hash.get(), EVP_sha256(), nullptr);
    FileDigest digest;
    std::vector<char> buffer(buffer_size);
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
        EVP_DigestUpdate(hash.get(), buffer.data(), static_cast<size_t>(in.gcount()));
        digest.size += static_cast<uint64_t>(in.gcount());
    }
    if (in.bad())
        return fail(errno_error("read " + file.string()));
    unsigned char bytes[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(hash.get(), bytes, &length);
    digest.sha256.assign(reinterpret_cast<char*>(bytes), length);
    return digest;
}

}  // namespace pv::patcher
