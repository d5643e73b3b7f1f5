#pragma once

// Numbers as users type them: sizes with K/M/G/T suffixes (powers of 1024),
// decimal or 0x-hexadecimal; bytes 0..255.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/App.hpp>

namespace pv::cli {

[[nodiscard]] std::optional<uint64_t> parse_size(std::string_view text);
[[nodiscard]] std::optional<uint8_t> parse_byte(std::string_view text);

CLI::Option* add_size_option(CLI::App& app, const std::string& name, uint64_t& value,
                             const std::string& help);
CLI::Option* add_byte_option(CLI::App& app, const std::string& name, uint8_t& value,
                             const std::string& help);

}  // namespace pv::cli
