#pragma once

// Version-order oracles: the package tools themselves, run as programs.
// Each takes many pairs at once, because one process per pair would make a
// few thousand comparisons slow.

#include <string>
#include <utility>
#include <vector>

namespace pv::test {

using VersionPair = std::pair<std::string, std::string>;

// dpkg --compare-versions for each pair: -1, 0 or 1 as first <, =, > second.
// Fails the calling test (and returns fewer results) if dpkg misbehaves.
[[nodiscard]] std::vector<int> dpkg_compare(const std::vector<VersionPair>& pairs);

// rpm's own EVR comparison, rpm.vercmp() of rpm's embedded Lua, evaluated by
// the rpm command-line tool: -1, 0 or 1.
[[nodiscard]] std::vector<int> rpm_compare(const std::vector<VersionPair>& pairs);

}  // namespace pv::test
