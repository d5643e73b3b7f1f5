#include "tests/e2e/hostile/guest_disk.hpp"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "agent/rootfs.hpp"

namespace pv::hostile {

namespace {

std::string rewritten(const std::string& status,
                      const std::map<std::string, std::string>& versions) {
    std::istringstream lines(status);
    std::string out, line, package;
    while (std::getline(lines, line)) {
        if (line.empty())
            package.clear();
        else if (line.rfind("Package: ", 0) == 0)
            package = line.substr(9);
        else if (line.rfind("Version: ", 0) == 0 && versions.count(package) != 0)
            line = "Version: " + versions.at(package);
        out += line + "\n";
    }
    return out;
}

}  // namespace

bool write_versions(const std::string& disk, const std::map<std::string, std::string>& versions) {
    char mountpoint[] = "/tmp/hostile-root.XXXXXX";
    if (::mkdtemp(mountpoint) == nullptr) {
        ::perror("hostile agent: mkdtemp");
        return false;
    }
    auto root = agent::MountedRoot::find_and_mount(disk, mountpoint);
    if (!root) {
        ::fprintf(stderr, "hostile agent: %s\n", root.error().message().c_str());
        return false;
    }
    const std::string path = root->path() + "/var/lib/dpkg/status";
    std::stringstream status;
    status << std::ifstream(path).rdbuf();
    std::ofstream(path + "-new") << rewritten(status.str(), versions);
    const bool renamed = ::rename((path + "-new").c_str(), path.c_str()) == 0;
    const bool unmounted = root->unmount().has_value();
    ::rmdir(mountpoint);
    if (!renamed || !unmounted)
        ::fprintf(stderr, "hostile agent: could not rewrite %s\n", path.c_str());
    return renamed && unmounted;
}

}  // namespace pv::hostile
