// main() of every Linux-guest test program (ctest label linux-guest): the
// tests need a /dev/kvm that runs a Linux guest. Where this host has one
// (vmm::why_no_linux_guest, the decision the CLI's sandbox choice makes
// too), they run here. Where it has not (kvm_pvm), the program runs itself
// again inside the nested rig (scripts/nested: an L1 VM under QEMU TCG with
// kvm_amd) with the same arguments, and its exit status is the rig's. Only
// when neither is possible do the tests skip, saying why; inside the rig a
// missing /dev/kvm fails them.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/support.hpp"
#include "vmm/kvm/host.hpp"

namespace {

class LinuxGuestHost : public testing::Environment {
  public:
    explicit LinuxGuestHost(std::string why_not) : m_why_not(std::move(why_not)) {}

    void SetUp() override {
        if (m_why_not.empty())
            return;
        if (std::getenv("PV_NESTED") != nullptr)
            FAIL() << "inside the nested rig, yet no Linux guest can run: " << m_why_not;
        GTEST_SKIP() << "a Linux guest cannot run here (" << m_why_not
                     << ") and qemu-system-x86_64, which the nested rig (scripts/nested) needs, "
                        "is not installed (scripts/install-deps installs it)";
    }

  private:
    std::string m_why_not;
};

std::string nested_script() {
    const char* source = std::getenv("PV_SOURCE_DIR");
    return std::string(source != nullptr ? source : PV_SOURCE_DIR) + "/scripts/nested";
}

// Replaces this process with `scripts/nested -- THIS-PROGRAM ARGUMENTS...`.
[[noreturn]] void run_in_rig(const std::vector<std::string>& arguments) {
    const std::string script = nested_script();
    std::error_code error;
    const std::string self = std::filesystem::read_symlink("/proc/self/exe", error).string();
    std::vector<std::string> words = {script, "--", self};
    words.insert(words.end(), arguments.begin() + 1, arguments.end());
    std::vector<char*> argv;
    for (auto& word : words)
        argv.push_back(word.data());
    argv.push_back(nullptr);
    std::fprintf(stderr, "linux-guest: no hardware KVM here: running %s in the nested rig\n",
                 self.c_str());
    std::fflush(stderr);
    ::execv(script.c_str(), argv.data());
    std::perror(("linux-guest: cannot run " + script).c_str());
    std::_Exit(125);
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> arguments(argv, argv + argc);
    testing::InitGoogleTest(&argc, argv);
    const std::string why_not = pv::vmm::why_no_linux_guest(pv::vmm::probe_host());
    const bool listing = GTEST_FLAG_GET(list_tests);
    if (!why_not.empty() && !listing && std::getenv("PV_NESTED") == nullptr &&
        pv::test::have_program("qemu-system-x86_64"))
        run_in_rig(arguments);
    testing::AddGlobalTestEnvironment(new LinuxGuestHost(why_not));
    return RUN_ALL_TESTS();
}
