// Crash safety: a writer is SIGKILLed at random moments; qemu-img check
// must never find corruption (exit 2) in the overlay it leaves, only leaks
// (exit 3) at worst, and the base file must stay byte-identical.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "imgfmt/qcow2/qcow2_image.hpp"
#include "support.hpp"

extern char** environ;

namespace pv::img {
namespace {

std::string writer_path() {
    const char* binary_dir = std::getenv("PV_BINARY_DIR");
    return std::string(binary_dir ? binary_dir : ".") +
           "/tests/integration/qcow2/qcow2_crash_writer";
}

pid_t spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& arg : args)
        argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&actions);
    return pid;
}

TEST(Qcow2Crash, SigkillNeverCorruptsTheOverlay) {
    const std::string writer = writer_path();
    ASSERT_TRUE(std::filesystem::exists(writer)) << writer;
    test::ScratchDir dir;
    const std::string base = dir.path("base.raw");
    const std::string overlay = dir.path("overlay.qcow2");
    test::write_file(base, test::random_bytes(16 << 20, 31));
    const std::string base_sum = test::sha256(base);
    const auto created = test::run(test::quote(writer) + " create " + test::quote(overlay) + " " +
                                   test::quote(base));
    ASSERT_EQ(created.exit_code, 0) << created.output;

    std::mt19937 random(2024);
    int leaked = 0;
    for (int trial = 0; trial < 10; ++trial) {
        const pid_t pid = spawn({writer, "write", overlay, std::to_string(trial)});
        ASSERT_GT(pid, 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(30 + random() % 400));
        ::kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself in trial " << trial;
        const auto check = test::qemu_check(overlay);
        ASSERT_TRUE(check.exit_code == 0 || check.exit_code == 3)
            << "trial " << trial << ": qemu-img check exit " << check.exit_code << "\n"
            << check.output;
        leaked += check.exit_code == 3 ? 1 : 0;
        ASSERT_EQ(test::sha256(base), base_sum) << "trial " << trial;
    }
    std::printf("10 SIGKILLed writers: %d left leaks, 0 corruption\n", leaked);
    // After all the crashes our own reader still opens and reads the file.
    auto image = Qcow2Image::open(overlay, Access::ReadOnly, Backing::Allow);
    ASSERT_TRUE(image.has_value()) << image.error().message();
    std::vector<std::byte> all((*image)->size());
    EXPECT_TRUE((*image)->read_at(all, 0).has_value());
}

}  // namespace
}  // namespace pv::img
