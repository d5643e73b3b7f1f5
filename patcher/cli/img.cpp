// patchvisor img: the image layer on its own — info, overlay, write,
// commit and compare (issue "Foundation").

#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "imgfmt/commit.hpp"
#include "imgfmt/compare.hpp"
#include "imgfmt/image.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"
#include "patcher/cli/commands.hpp"
#include "patcher/cli/numbers.hpp"
#include "patcher/cli/progress.hpp"

namespace pv::cli {

namespace {

nlohmann::json info_json(const img::ImageInfo& info) {
    nlohmann::json json = {
        {"path", info.path},
        {"format", std::string(img::format_name(info.format))},
        {"virtual_size", info.virtual_size},
        {"file_size", info.file_size},
        {"allocated_bytes", info.allocated_bytes},
        {"cluster_size", info.cluster_size},
        {"encrypted", info.encrypted},
        {"backing_file", nullptr},
        {"backing_format", nullptr},
    };
    if (info.version != 0)
        json["version"] = info.version;
    if (info.backing_file)
        json["backing_file"] = *info.backing_file;
    if (info.backing_format)
        json["backing_format"] = *info.backing_format;
    return json;
}

void print_info(const img::ImageInfo& info) {
    fmt::print("image:        {}\n", info.path);
    fmt::print("format:       {}", img::format_name(info.format));
    if (info.version != 0)
        fmt::print(" (version {})", info.version);
    fmt::print("\nvirtual size: {} ({} bytes)\n", format_bytes(info.virtual_size),
               info.virtual_size);
    fmt::print("allocated:    {} on disk, file size {}\n", format_bytes(info.allocated_bytes),
               format_bytes(info.file_size));
    if (info.cluster_size != 0)
        fmt::print("cluster size: {}\n", info.cluster_size);
    if (info.encrypted)
        fmt::print("encrypted:    yes\n");
    if (info.backing_file)
        fmt::print("backing file: {} (format {})\n", *info.backing_file,
                   info.backing_format.value_or("not recorded"));
}

Result<int> run_info(const std::string& path, bool json) {
    const auto info = PV_TRY(img::inspect_image(path));
    if (json)
        fmt::print("{}\n", info_json(info).dump());
    else
        print_info(info);
    return kExitOk;
}

Result<int> run_overlay(const std::string& base_path, const std::string& overlay_path) {
    const auto format = PV_TRY(img::detect_format(base_path));
    auto base = PV_TRY(img::open_image(base_path, Access::ReadOnly, img::Backing::Refuse));
    const auto absolute = std::filesystem::absolute(base_path).lexically_normal().string();
    auto overlay =
        PV_TRY(img::Qcow2Image::create_overlay(overlay_path, std::move(base), absolute, format));
    PV_TRY(overlay->flush());
    fmt::print("created {} over {} ({}, {})\n", overlay_path, absolute, img::format_name(format),
               format_bytes(overlay->size()));
    return kExitOk;
}

struct WriteOptions {
    std::string overlay;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint8_t pattern = 0;
};

Result<int> run_write(const WriteOptions& options) {
    auto image =
        PV_TRY(img::Qcow2Image::open(options.overlay, Access::ReadWrite, img::Backing::Allow));
    const std::vector<std::byte> chunk(std::min<uint64_t>(options.length, 4 << 20),
                                       std::byte{options.pattern});
    for (uint64_t done = 0; done < options.length;) {
        const uint64_t length = std::min<uint64_t>(chunk.size(), options.length - done);
        PV_TRY(image->write_at(std::span(chunk.data(), length), options.offset + done));
        done += length;
    }
    PV_TRY(image->flush());
    fmt::print("wrote {} bytes of 0x{:02x} at offset {} of {}\n", options.length, options.pattern,
               options.offset, options.overlay);
    return kExitOk;
}

struct CommitCommand {
    std::string overlay;
    std::string output;
    std::string format;
    bool replace = false;
    bool keep_backup = false;
    bool json = false;
};

Result<int> run_commit(const CommitCommand& command) {
    img::CommitOptions options;
    if (!command.format.empty())
        options.format = PV_TRY(img::parse_format(command.format));
    if (!command.output.empty())
        options.output = command.output;
    options.keep_backup = command.keep_backup;
    ProgressBar bar("commit");
    options.progress = [&bar](uint64_t done, uint64_t total) { bar.update(done, total); };
    const auto started = std::chrono::steady_clock::now();
    const auto result = PV_TRY(img::commit_overlay(command.overlay, options));
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - started;
    if (command.json) {
        nlohmann::json json = {{"overlay", command.overlay},
                               {"original", result.original},
                               {"target", result.target},
                               {"format", std::string(img::format_name(result.format))},
                               {"virtual_size", result.virtual_size},
                               {"bytes_copied", result.bytes_copied},
                               {"backup", result.backup ? nlohmann::json(*result.backup) : nullptr},
                               {"seconds", seconds.count()}};
        fmt::print("{}\n", json.dump());
        return kExitOk;
    }
    fmt::print("committed {} into {} ({}, {} copied in {:.2f} s)\n", command.overlay, result.target,
               img::format_name(result.format), format_bytes(result.bytes_copied), seconds.count());
    if (result.backup)
        fmt::print("the original is kept as {}\n", *result.backup);
    if (!command.output.empty())
        return kExitOk;
    fmt::print("note: {} now refers to the replaced image; discard it\n", command.overlay);
    return kExitOk;
}

Result<int> run_compare(const std::string& first_path, const std::string& second_path,
                        bool allow_backing) {
    const auto backing = allow_backing ? img::Backing::Allow : img::Backing::Refuse;
    auto first = PV_TRY(img::open_image(first_path, Access::ReadOnly, backing));
    auto second = PV_TRY(img::open_image(second_path, Access::ReadOnly, backing));
    const auto difference = PV_TRY(img::compare_devices(*first, *second));
    if (!difference) {
        fmt::print("images are identical\n");
        return kExitOk;
    }
    fmt::print("images differ at offset {} (0x{:02x} in {}, 0x{:02x} in {})\n", difference->offset,
               difference->first, first_path, difference->second, second_path);
    return kExitFailed;
}

}  // namespace

void add_img_commands(CLI::App& app, CommandResult& result) {
    auto* img = app.add_subcommand("img", "Image layer: inspect, overlay, write, commit, compare");
    img->require_subcommand(1);

    auto* info = img->add_subcommand("info", "Show an image's format, sizes and backing file");
    auto info_path = std::make_shared<std::string>();
    auto info_json = std::make_shared<bool>(false);
    info->add_option("IMAGE", *info_path, "the image")->required();
    info->add_flag("--json", *info_json, "one JSON object on standard output");
    info->callback(
        [&result, info_path, info_json] { result.outcome = run_info(*info_path, *info_json); });

    auto* overlay = img->add_subcommand("overlay", "Create a qcow2 overlay over BASE");
    auto overlay_paths = std::make_shared<std::pair<std::string, std::string>>();
    overlay->add_option("BASE", overlay_paths->first, "the original image")->required();
    overlay->add_option("OVERLAY", overlay_paths->second, "the new overlay file")->required();
    overlay->callback([&result, overlay_paths] {
        result.outcome = run_overlay(overlay_paths->first, overlay_paths->second);
    });

    auto* write = img->add_subcommand("write", "Write a byte pattern into an overlay");
    auto write_options = std::make_shared<WriteOptions>();
    write->add_option("OVERLAY", write_options->overlay, "the overlay")->required();
    add_size_option(*write, "--offset", write_options->offset, "byte offset (K/M/G suffixes)")
        ->required();
    add_size_option(*write, "--length", write_options->length, "bytes to write")->required();
    add_byte_option(*write, "--pattern", write_options->pattern, "byte value, 0xNN or decimal")
        ->required();
    write->callback([&result, write_options] { result.outcome = run_write(*write_options); });

    auto* commit = img->add_subcommand("commit", "Merge an overlay into a new standalone image");
    auto commit_command = std::make_shared<CommitCommand>();
    commit->add_option("OVERLAY", commit_command->overlay, "the overlay")->required();
    auto* output = commit->add_option("--output", commit_command->output, "write the result here");
    auto* replace = commit->add_flag("--replace", commit_command->replace,
                                     "atomically replace the overlay's backing file");
    output->excludes(replace);
    commit->add_option("--format", commit_command->format, "target format (default: original's)")
        ->check(CLI::IsMember({"raw", "qcow2"}));
    commit
        ->add_flag("--keep-backup", commit_command->keep_backup,
                   "with --replace: keep the original as NAME.pre-patch")
        ->needs(replace);
    commit->add_flag("--json", commit_command->json, "one JSON object on standard output");
    commit->callback([&result, commit_command] {
        if (commit_command->output.empty() && !commit_command->replace)
            throw CLI::RequiredError("--output PATH or --replace");
        result.outcome = run_commit(*commit_command);
    });

    auto* compare = img->add_subcommand("compare", "Exit 0 when two virtual disks are equal");
    auto compare_paths = std::make_shared<std::pair<std::string, std::string>>();
    auto allow_backing = std::make_shared<bool>(false);
    compare->add_option("A", compare_paths->first, "first image")->required();
    compare->add_option("B", compare_paths->second, "second image")->required();
    compare->add_flag("--allow-backing", *allow_backing, "follow backing files named in images");
    compare->callback([&result, compare_paths, allow_backing] {
        result.outcome = run_compare(compare_paths->first, compare_paths->second, *allow_backing);
    });
}

}  // namespace pv::cli
