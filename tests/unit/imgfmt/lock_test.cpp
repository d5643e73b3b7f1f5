// ImageLock: OFD locks belong to an open file description, so a second
// acquire in the same process conflicts like another process would.

#include "imgfmt/lock.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <optional>

#include "crafted_images.hpp"

namespace pv::img {
namespace {

using test::TempDir;

TEST(ImageLock, SecondHolderIsToldTheImageIsInUse) {
    TempDir dir;
    const std::string path = dir.file("disk.raw");
    test::write_file(path, std::vector<uint8_t>(4096, 0));
    std::optional<ImageLock> first;
    {
        auto lock = ImageLock::acquire(path);
        ASSERT_TRUE(lock) << lock.error().message();
        EXPECT_EQ(lock->path(), path);
        first.emplace(std::move(*lock));
    }
    auto second = ImageLock::acquire(path);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().message(), path + ": image is in use by another process");
    EXPECT_EQ(second.error().code, EBUSY);
    first.reset();
    auto third = ImageLock::acquire(path);
    EXPECT_TRUE(third) << third.error().message();
}

TEST(ImageLock, MissingFileAndDirectoryAreErrors) {
    TempDir dir;
    auto missing = ImageLock::acquire(dir.file("absent"));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ENOENT);
    ASSERT_EQ(::mkdir(dir.file("subdir").c_str(), 0755), 0);
    auto directory = ImageLock::acquire(dir.file("subdir"));
    ASSERT_FALSE(directory);
    EXPECT_NE(directory.error().message().find(dir.file("subdir")), std::string::npos);
}

}  // namespace
}  // namespace pv::img
