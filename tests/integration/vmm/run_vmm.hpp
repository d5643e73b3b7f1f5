#pragma once

// Runs patchvisor-vmm as a child process and collects its serial
// transcript, JSON summary, stderr and exit status.

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pv::vmm::test {

inline std::string binary_dir() {
    const char* directory = std::getenv("PV_BINARY_DIR");
    return directory ? directory : ".";
}

inline std::string vmm_path() {
    return binary_dir() + "/vmm/patchvisor-vmm";
}
inline std::string testguest_path() {
    return binary_dir() + "/images/testguest/testguest.elf";
}

inline bool kvm_present() {
    struct stat status {};
    return stat("/dev/kvm", &status) == 0;
}

inline std::string slurp(const std::string& path) {
    std::ifstream stream(path);
    std::stringstream buffer;
    buffer << stream.rdbuf();
    return buffer.str();
}

// Lines without their ending: "\n", or "\r\n" as a Linux serial console
// writes them (its tty turns each "\n" into "\r\n").
inline std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream stream(text);
    for (std::string line; std::getline(stream, line);) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        lines.push_back(line);
    }
    return lines;
}

inline std::string shell_quote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text)
        quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

struct VmmRun {
    int exit_code = -1;
    std::vector<std::string> serial;
    std::string stdout_text;
    std::string stderr_text;
    nlohmann::json summary;  // null if stdout had no JSON line
};

// Runs with --json (and --serial-log into a fresh temporary directory);
// with --serial-log - the transcript is in stdout_text, before the JSON line.
inline VmmRun run_vmm(const std::vector<std::string>& arguments) {
    char directory[] = "/tmp/pv-vmm-test.XXXXXX";
    VmmRun run;
    if (!mkdtemp(directory))
        return run;
    std::string base = directory;
    std::string command = shell_quote(vmm_path()) + " --json";
    // The transcript goes to a log unless the caller chose its own target.
    if (std::find(arguments.begin(), arguments.end(), "--serial-log") == arguments.end())
        command += " --serial-log " + shell_quote(base + "/serial.log");
    for (const auto& argument : arguments)
        command += " " + shell_quote(argument);
    command += " >" + base + "/stdout 2>" + base + "/stderr";
    int status = std::system(command.c_str());
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.serial = split_lines(slurp(base + "/serial.log"));
    run.stdout_text = slurp(base + "/stdout");
    run.stderr_text = slurp(base + "/stderr");
    auto lines = split_lines(run.stdout_text);
    if (!lines.empty())
        run.summary = nlohmann::json::parse(lines.back(), nullptr, false);
    std::system(("rm -rf " + base).c_str());
    return run;
}

}  // namespace pv::vmm::test
