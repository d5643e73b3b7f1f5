#include "patcher/cli/numbers.hpp"

#include <charconv>

namespace pv::cli {

namespace {

std::optional<uint64_t> parse_unsigned(std::string_view text) {
    int base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text.remove_prefix(2);
    }
    uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (text.empty() || error != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

int suffix_shift(char suffix) {
    switch (suffix) {
        case 'K':
        case 'k':
            return 10;
        case 'M':
        case 'm':
            return 20;
        case 'G':
        case 'g':
            return 30;
        case 'T':
        case 't':
            return 40;
        default:
            return -1;
    }
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
    int shift = 0;
    if (!text.empty() && !(text.size() > 2 && text[1] == 'x')) {
        const int suffix = suffix_shift(text.back());
        if (suffix > 0) {
            shift = suffix;
            text.remove_suffix(1);
        }
    }
    const auto value = parse_unsigned(text);
    if (!value || (shift > 0 && *value > (UINT64_MAX >> shift)))
        return std::nullopt;
    return *value << shift;
}

std::optional<uint8_t> parse_byte(std::string_view text) {
    const auto value = parse_unsigned(text);
    if (!value || *value > 0xff)
        return std::nullopt;
    return static_cast<uint8_t>(*value);
}

CLI::Option* add_size_option(CLI::App& app, const std::string& name, uint64_t& value,
                             const std::string& help) {
    return app.add_option_function<std::string>(
        name,
        [&value, name](const std::string& text) {
            const auto parsed = parse_size(text);
            if (!parsed)
                throw CLI::ValidationError(
                    name, "'" + text + "' is not a size (e.g. 4096, 0x1000, 64K, 1G)");
            value = *parsed;
        },
        help);
}

CLI::Option* add_byte_option(CLI::App& app, const std::string& name, uint8_t& value,
                             const std::string& help) {
    return app.add_option_function<std::string>(
        name,
        [&value, name](const std::string& text) {
            const auto parsed = parse_byte(text);
            if (!parsed)
                throw CLI::ValidationError(name,
                                           "'" + text + "' is not a byte (0..255 or 0x00..0xff)");
            value = *parsed;
        },
        help);
}

}  // namespace pv::cli
