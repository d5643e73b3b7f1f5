#include "patcher/domain/domain_disks.hpp"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include <memory>

#include <fmt/format.h>

namespace pv::domain {

namespace {

struct DocumentFreer {
    void operator()(xmlDoc* document) const { xmlFreeDoc(document); }
};
struct ContextFreer {
    void operator()(xmlXPathContext* context) const { xmlXPathFreeContext(context); }
};
struct ObjectFreer {
    void operator()(xmlXPathObject* object) const { xmlXPathFreeObject(object); }
};

std::string attribute(xmlNode* node, const char* name) {
    if (node == nullptr)
        return "";
    xmlChar* value = xmlGetProp(node, reinterpret_cast<const xmlChar*>(name));
    std::string text = value != nullptr ? reinterpret_cast<const char*>(value) : "";
    xmlFree(value);
    return text;
}

xmlNode* child(xmlNode* node, const char* name) {
    for (xmlNode* item = node->children; item != nullptr; item = item->next)
        if (item->type == XML_ELEMENT_NODE &&
            xmlStrcmp(item->name, reinterpret_cast<const xmlChar*>(name)) == 0)
            return item;
    return nullptr;
}

DomainDisk read_disk(xmlNode* node) {
    DomainDisk disk;
    disk.type = attribute(node, "type");
    disk.device = attribute(node, "device");
    if (disk.device.empty())
        disk.device = "disk";  // the XML format's default
    disk.target = attribute(child(node, "target"), "dev");
    disk.driver_type = attribute(child(node, "driver"), "type");
    xmlNode* source = child(node, "source");
    disk.source = attribute(source, "file");
    if (disk.source.empty() && !attribute(source, "dev").empty()) {
        disk.source = attribute(source, "dev");
        disk.kind = SourceKind::Block;
    }
    disk.readonly = child(node, "readonly") != nullptr;
    disk.shareable = child(node, "shareable") != nullptr;
    return disk;
}

}  // namespace

std::optional<std::string> DomainDisk::skip_reason() const {
    if (device == "cdrom" || device == "floppy")
        return device;
    if (readonly)
        return "read-only";
    if (shareable)
        return "shareable (other domains may write it)";
    return std::nullopt;
}

Result<std::vector<DomainDisk>> parse_domain_disks(const std::string& xml,
                                                   const std::string& name) {
    // No network access and no entity expansion: the XML comes from libvirt,
    // but a parser that fetches nothing cannot be talked into it.
    std::unique_ptr<xmlDoc, DocumentFreer> document(
        xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr,
                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
    if (!document)
        return fail(make_error("read the XML of domain " + name, "not well-formed XML"));
    std::unique_ptr<xmlXPathContext, ContextFreer> context(xmlXPathNewContext(document.get()));
    if (!context)
        return fail(make_error("read the XML of domain " + name, "out of memory"));
    std::unique_ptr<xmlXPathObject, ObjectFreer> found(xmlXPathEvalExpression(
        reinterpret_cast<const xmlChar*>("/domain/devices/disk"), context.get()));
    if (!found)
        return fail(make_error("read the XML of domain " + name, "XPath evaluation failed"));
    std::vector<DomainDisk> disks;
    if (found->nodesetval != nullptr)
        for (int i = 0; i < found->nodesetval->nodeNr; ++i)
            disks.push_back(read_disk(found->nodesetval->nodeTab[i]));
    return disks;
}

Result<img::Format> disk_format(const DomainDisk& disk, DiskUse use) {
    const auto refuse = [&disk](const std::string& why) {
        return fail(make_error(fmt::format("disk {} ({})", disk.target, disk.source), why));
    };
    if (disk.type != "file" && disk.type != "block")
        return refuse(
            fmt::format("its type is '{}'; only file and block disks are supported", disk.type));
    if (disk.source.empty())
        return refuse("it has no source file or device");
    if (disk.source.front() != '/')
        return refuse("its source is not an absolute path");
    if (disk.driver_type.empty())
        return refuse(
            "its <driver> names no type, and patchvisor never probes a format: add "
            "<driver name='qemu' type='raw'/> (or qcow2) to the domain");
    auto format = img::parse_format(disk.driver_type);
    if (!format)
        return refuse(
            fmt::format("its format '{}' is not supported (raw, qcow2, qcow)", disk.driver_type));
    if (use == DiskUse::Patch && disk.kind == SourceKind::Block)
        return refuse(
            "it is a block device, which cannot be replaced atomically by a "
            "rename; `check` reads it, `patch` takes only image files");
    if (use == DiskUse::Patch && *format == img::Format::Qcow)
        return refuse(
            "it is qcow (version 1): the patched image would be qcow2, which "
            "the domain's <driver type='qcow'> would misread; convert the disk to "
            "qcow2 first");
    return *format;
}

}  // namespace pv::domain
