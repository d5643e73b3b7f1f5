#include "guestfs/reply.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace pv::guestfs::detail {

namespace {

using Json = nlohmann::json;

bool is_field(const Json& value) {
    if (!value.is_string())
        return false;
    const auto& text = value.get_ref<const std::string&>();
    return text.size() <= kMaxFieldBytes && std::all_of(text.begin(), text.end(), [](char c) {
               return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f;
           });
}

Result<InstalledPackage> decode_package(const Json& entry, const std::string& decoding) {
    if (!entry.is_array() || entry.size() != 5 || !entry[4].is_boolean() ||
        !std::all_of(entry.begin(), entry.begin() + 4, is_field))
        return fail(make_error(decoding, "a package entry is malformed"));
    return InstalledPackage{entry[0].get<std::string>(), entry[1].get<std::string>(),
                            entry[2].get<std::string>(), entry[3].get<std::string>(),
                            entry[4].get<bool>()};
}

Result<DatabaseKind> decode_kind(const Json& kind, const std::string& decoding) {
    for (const DatabaseKind candidate : {DatabaseKind::Dpkg, DatabaseKind::Rpm})
        if (kind.is_string() && kind.get_ref<const std::string&>() == database_name(candidate))
            return candidate;
    return fail(make_error(decoding, "no database kind"));
}

}  // namespace

std::string encode_reply(const Result<PackageDatabase>& result) {
    Json reply;
    if (!result) {
        reply["error"] = {{"operation", result.error().operation},
                          {"detail", result.error().detail}};
    } else {
        Json packages = Json::array();
        for (const auto& package : result->packages)
            packages.push_back({package.name, package.architecture, package.version, package.status,
                                package.installed});
        reply = {{"kind", database_name(result->kind)},
                 {"location", result->location},
                 {"packages", std::move(packages)}};
    }
    // Messages may quote guest bytes that are not UTF-8.
    return reply.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<PackageDatabase> decode_reply(std::string_view reply, const std::string& disk_name) {
    const std::string decoding =
        "read the package database of " + disk_name + " from the reader process";
    if (reply.size() > kMaxReplyBytes)
        return fail(
            make_error(decoding, "it is over " + std::to_string(kMaxReplyBytes) + " bytes"));
    const Json json = Json::parse(reply, nullptr, false);
    if (json.is_discarded() || !json.is_object())
        return fail(make_error(decoding, "it is not a JSON object"));
    if (const auto error = json.find("error"); error != json.end()) {
        if (!error->is_object() || !error->value("operation", Json()).is_string() ||
            !error->value("detail", Json()).is_string())
            return fail(make_error(decoding, "its error is malformed"));
        return fail(make_error((*error)["operation"].get<std::string>(),
                               (*error)["detail"].get<std::string>()));
    }
    PackageDatabase database;
    database.kind = PV_TRY(decode_kind(json.value("kind", Json()), decoding));
    const Json location = json.value("location", Json());
    const Json packages = json.value("packages", Json());
    if (!location.is_string() || !packages.is_array())
        return fail(make_error(decoding, "no location or package list"));
    if (packages.size() > kMaxPackages)
        return fail(make_error(decoding, std::to_string(packages.size()) +
                                             " packages is over the limit of " +
                                             std::to_string(kMaxPackages)));
    database.location = location.get<std::string>();
    for (const auto& entry : packages)
        database.packages.push_back(PV_TRY(decode_package(entry, decoding)));
    return database;
}

}  // namespace pv::guestfs::detail
