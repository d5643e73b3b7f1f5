#include "tests/e2e/libvirt/test_domains.hpp"

#include <fstream>

#include <gtest/gtest.h>

#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {

namespace {

std::string disk_xml(const TestDisk& disk) {
    std::string xml = "<disk type='file' device='" + disk.device + "'>";
    if (!disk.format.empty())
        xml += "<driver name='qemu' type='" + disk.format + "'/>";
    xml += "<source file='" + disk.source + "'/><target dev='" + disk.target + "'/>";
    if (disk.readonly)
        xml += "<readonly/>";
    return xml + "</disk>\n";
}

}  // namespace

std::string write_test_node(const TempDir& dir, const std::vector<TestDomain>& domains) {
    std::string xml = "<node>\n";
    for (const auto& domain : domains) {
        xml += "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n";
        xml += "<name>" + domain.name + "</name><memory>65536</memory>";
        xml += "<os><type>hvm</type></os>\n<devices>\n";
        for (const auto& disk : domain.disks)
            xml += disk_xml(disk);
        xml += "</devices>\n<test:runstate>" + std::to_string(domain.runstate) + "</test:runstate>";
        if (domain.managed_save)
            xml += "<test:hasmanagedsave/>";
        xml += "\n</domain>\n";
    }
    xml += "</node>\n";
    const auto path = dir.file("node.xml");
    std::ofstream(path) << xml;
    return "test://" + path;
}

std::map<std::string, std::string> catalog_versions(const std::string& catalog) {
    std::map<std::string, std::string> versions;
    for (const auto& package : catalog_packages(catalog))
        versions[package.name] = package.version;
    EXPECT_FALSE(versions.empty()) << "no package files in " << catalog;
    return versions;
}

}  // namespace pv::test
