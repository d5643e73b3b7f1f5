// Crash safety: a writer is SIGKILLed at random moments; qemu-img check
// must never find corruption (exit 2) in the overlay it leaves, only leaks
// (exit 3) at worst, the base file must stay byte-identical, and every
// write the writer had flushed must read back.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "crash_ops.hpp"
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

pid_t spawn(const std::vector<std::string>& args, const std::string& output) {
    std::vector<char*> argv;
    for (const auto& arg : args)
        argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&actions);
    return pid;
}

// The number of operations the writer reported durable ("flushed N").
uint64_t last_flushed(const std::string& output) {
    std::ifstream in(output);
    std::string word;
    uint64_t count = 0;
    uint64_t flushed = 0;
    while (in >> word)
        if (word == "flushed" && in >> count)
            flushed = count;
    return flushed;
}

// Replays trial SEED into MODEL: operations up to the last flush are
// durable; the ones after it, up to the next flush, may have landed in
// part, so their bytes become UNCERTAIN until a durable write covers them.
void replay(uint64_t seed, uint64_t durable, std::vector<std::byte>& model,
            std::vector<uint8_t>& uncertain) {
    test::CrashOps ops(seed, model.size(), 65536);
    for (uint64_t i = 0; i < durable; ++i) {
        const test::CrashOp op = ops.next();
        std::fill(model.begin() + op.offset, model.begin() + op.offset + op.length, op.fill);
        std::fill(uncertain.begin() + op.offset, uncertain.begin() + op.offset + op.length, 0);
    }
    for (;;) {
        const test::CrashOp op = ops.next();
        std::fill(uncertain.begin() + op.offset, uncertain.begin() + op.offset + op.length, 1);
        if (op.flush_after)
            break;
    }
}

// Every byte the model is sure of must read back from the overlay.
void expect_durable(const std::string& overlay, const std::vector<std::byte>& model,
                    const std::vector<uint8_t>& uncertain, int trial) {
    auto image = Qcow2Image::open(overlay, Access::ReadOnly, Backing::Allow);
    ASSERT_TRUE(image.has_value()) << image.error().message();
    std::vector<std::byte> all((*image)->size());
    ASSERT_TRUE((*image)->read_at(all, 0).has_value());
    for (size_t i = 0; i < all.size(); ++i) {
        if (!uncertain[i] && all[i] != model[i]) {
            FAIL() << "trial " << trial << ": flushed byte at " << i << " reads "
                   << static_cast<int>(all[i]) << ", expected " << static_cast<int>(model[i]);
        }
    }
}

TEST(Qcow2Crash, SigkillNeverCorruptsTheOverlay) {
    const std::string writer = writer_path();
    ASSERT_TRUE(std::filesystem::exists(writer)) << writer;
    test::ScratchDir dir;
    const std::string base = dir.path("base.raw");
    const std::string overlay = dir.path("overlay.qcow2");
    std::vector<std::byte> model = test::random_bytes(16 << 20, 31);
    std::vector<uint8_t> uncertain(model.size(), 0);
    test::write_file(base, model);
    const std::string base_sum = test::sha256(base);
    const auto created = test::run(test::quote(writer) + " create " + test::quote(overlay) + " " +
                                   test::quote(base));
    ASSERT_EQ(created.exit_code, 0) << created.output;

    std::mt19937 random(2024);
    int leaked = 0;
    int flushes = 0;
    for (int trial = 0; trial < 10; ++trial) {
        const std::string output = dir.path("writer.out");
        const pid_t pid = spawn({writer, "write", overlay, std::to_string(trial)}, output);
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
        const uint64_t durable = last_flushed(output);
        flushes += durable > 0 ? 1 : 0;
        replay(static_cast<uint64_t>(trial), durable, model, uncertain);
        expect_durable(overlay, model, uncertain, trial);
    }
    std::printf("10 SIGKILLed writers: %d left leaks, 0 corruption, %d had flushed\n", leaked,
                flushes);
    EXPECT_GT(flushes, 0) << "no trial reached a flush: the durability check tested nothing";
}

}  // namespace
}  // namespace pv::img
