#include "tests/unit/detect/test_packages.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tests/support/support.hpp"

namespace pv::test {
namespace {

void run_or_throw(const std::string& command) {
    const CommandOutput result = run(command);
    if (result.exit_code != 0)
        throw std::runtime_error(command + " failed:\n" + result.output);
}

std::string without_colons(std::string text) {
    for (char& c : text) {
        if (c == ':')
            c = '_';
    }
    return text;
}

}  // namespace

std::string build_deb(const std::string& directory, const DebSpec& spec) {
    const std::string stem = spec.name + "_" + without_colons(spec.version) + "_" +
                             spec.architecture + "_" + spec.compression;
    const std::string root = directory + "/" + stem + ".root";
    std::filesystem::create_directories(root + "/DEBIAN");
    std::ofstream(root + "/DEBIAN/control")
        << "Package: " << spec.name << "\nVersion: " << spec.version
        << "\nArchitecture: " << spec.architecture
        << "\nMaintainer: patchvisor tests <tests@example.invalid>"
        << "\nDescription: patchvisor test package\n";
    const std::string deb = directory + "/" + stem + ".deb";
    run_or_throw("dpkg-deb --root-owner-group -Z" + spec.compression + " --build " + quote(root) +
                 " " + quote(deb) + " 2>&1");
    std::filesystem::remove_all(root);
    return deb;
}

std::string build_rpm(const std::string& directory, const RpmSpec& spec) {
    const std::string work = directory + "/" + spec.name + "-" + spec.version + ".rpmbuild";
    std::filesystem::create_directories(work);
    std::ofstream spec_file(work + "/package.spec");
    spec_file << "Name: " << spec.name << "\nVersion: " << spec.version
              << "\nRelease: " << spec.release << "\n";
    if (!spec.epoch.empty())
        spec_file << "Epoch: " << spec.epoch << "\n";
    if (spec.architecture == "noarch")
        spec_file << "BuildArch: noarch\n";
    spec_file << "Summary: patchvisor test package\nLicense: MIT\n"
              << "%description\npatchvisor test package\n%files\n";
    spec_file.close();
    const std::string file_name =
        spec.name + "-" + spec.version + "-" + spec.release + "." + spec.architecture + ".rpm";
    std::string command = "rpmbuild -bb --nodeps --quiet";
    if (spec.architecture != "noarch")
        command += " --target " + spec.architecture;
    command += " --define " + quote("_topdir " + work + "/top") + " --define " +
               quote("_rpmdir " + directory) + " --define " +
               quote("_build_name_fmt " + file_name) + " " + quote(work + "/package.spec") +
               " 2>&1";
    run_or_throw(command);
    std::filesystem::remove_all(work);
    return directory + "/" + file_name;
}

}  // namespace pv::test
