#pragma once

// libvirt test-driver nodes for the domain tests: a node XML file with
// domains in a chosen state (the test driver's own namespace,
// <test:runstate> and <test:hasmanagedsave/>), read by `--connect
// test:///ABSOLUTE/node.xml` in each patchvisor process afresh.

#include <map>
#include <string>
#include <vector>

#include "tests/support/support.hpp"

namespace pv::test {

struct TestDisk {
    std::string target;  // vda
    std::string source;  // absolute path
    std::string format;  // driver type; "" for none
    std::string device = "disk";
    bool readonly = false;
};

struct TestDomain {
    std::string name;
    // virDomainState: 1 running, 3 paused, 5 shut off.
    int runstate = 5;
    bool managed_save = false;
    std::vector<TestDisk> disks;
};

// Writes DIR/node.xml with DOMAINS and returns its test:/// URI.
[[nodiscard]] std::string write_test_node(const TempDir& dir,
                                          const std::vector<TestDomain>& domains);

// Package name -> version of the catalog's package files (dpkg-deb, via
// catalog_packages): what a patched disk must have. Fails the test unless
// there are some.
[[nodiscard]] std::map<std::string, std::string> catalog_versions(const std::string& catalog);

}  // namespace pv::test
