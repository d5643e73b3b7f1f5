#pragma once

// libsolv's C headers, for C++20: struct Solvable has a member named
// `requires`, a C++20 keyword, so the name is spelled differently while
// they are read (nothing here uses that member). Include this after every
// C++ header, and libsolv only through it.

#define requires libsolv_requires
extern "C" {
#include <solv/evr.h>
#include <solv/knownid.h>
#include <solv/pool.h>
#include <solv/poolarch.h>
#include <solv/repo.h>
#include <solv/repo_repomdxml.h>
#include <solv/repo_rpmdb.h>
#include <solv/repo_rpmmd.h>
#include <solv/repo_updateinfoxml.h>
#include <solv/rules.h>
#include <solv/solv_xfopen.h>
#include <solv/solver.h>
#include <solv/transaction.h>
}
#undef requires
