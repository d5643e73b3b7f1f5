#pragma once

// Small helpers shared by the integration and end-to-end tests: running
// the tools we did not write (qemu-img, qemu-io, debugfs...) and our own
// binaries, temporary directories, file hashes.

#include <string>
#include <string_view>

namespace pv::test {

struct CommandOutput {
    int exit_code = -1;  // the process's exit status, or -1 if it did not exit
    std::string output;  // standard output and standard error together
};

// Runs COMMAND with /bin/sh -c and collects what it prints.
[[nodiscard]] CommandOutput run(const std::string& command);

// Runs COMMAND and fails the current test (gtest) unless it exits 0.
void must(const std::string& command);

// Quotes TEXT for the shell.
[[nodiscard]] std::string quote(const std::string& text);

// A fresh directory under $TMPDIR (default /tmp), removed with its contents.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] const std::string& path() const { return m_path; }
    [[nodiscard]] std::string file(const std::string& name) const { return m_path + "/" + name; }

  private:
    std::string m_path;
};

// Lower-case hex SHA-256 of a file's bytes (OpenSSL), "" if unreadable.
[[nodiscard]] std::string sha256_of_file(const std::string& path);
// The same of BYTES.
[[nodiscard]] std::string sha256_of_bytes(std::string_view bytes);

// A binary of this build: "patcher/cli/patchvisor" → $PV_BINARY_DIR/...
[[nodiscard]] std::string built_binary(const std::string& relative);

// Whether a program is on PATH.
[[nodiscard]] bool have_program(const std::string& name);

}  // namespace pv::test
