#include "patcher/repo/rpmmd/rpmmd_resolver.hpp"

#include <rpm/header.h>
#include <rpm/rpmtag.h>

#include <cstring>
#include <memory>
#include <set>
#include <span>
#include <string_view>

#include <fmt/format.h>

#include "guestfs/rpm/rpm_database.hpp"
#include "patcher/repo/rpmmd/libsolv.hpp"

namespace pv::patcher::repo {

namespace {

constexpr std::string_view kPatchPrefix = "patch:";

struct FreePool {
    void operator()(Pool* pool) const { pool_free(pool); }
};
struct FreeSolver {
    void operator()(Solver* solver) const { solver_free(solver); }
};
struct FreeTransaction {
    void operator()(Transaction* transaction) const { transaction_free(transaction); }
};

class IdQueue {
  public:
    IdQueue() { queue_init(&m_queue); }
    ~IdQueue() { queue_free(&m_queue); }
    IdQueue(const IdQueue&) = delete;
    IdQueue& operator=(const IdQueue&) = delete;
    Queue* get() { return &m_queue; }
    [[nodiscard]] std::span<const Id> ids() const {
        return {m_queue.elements, static_cast<size_t>(m_queue.count)};
    }

  private:
    Queue m_queue;
};

// One updateinfo advisory as libsolv holds it: a "patch:ID" solvable that
// conflicts with every package older than the versions it fixes.
struct Advisory {
    Id solvable = 0;
    std::string id;
    std::string category;
    std::vector<std::string> cves;
    struct Fix {
        std::string package;
        std::string evr;
        Id dependency = 0;  // "package < evr"
    };
    std::vector<Fix> fixes;
};

class Resolver {
  public:
    explicit Resolver(const RpmMdRepository& repository)
        : m_repository(repository), m_pool(pool_create()) {}

    Result<RpmResolution> run(std::string rpmdb, UpgradeMode mode) {
        if (pool_setdisttype(m_pool.get(), DISTTYPE_RPM) < 0)
            return fail(make_error("resolve with libsolv", "this libsolv has no rpm semantics"));
        PV_TRY(add_installed(std::move(rpmdb)));
        m_available = repo_create(m_pool.get(), "repository");
        PV_TRY(add_file(m_repository.primary, [](Repo* repo, FILE* file) {
            return repo_add_rpmmd(repo, file, nullptr, 0);
        }));
        if (m_repository.updateinfo)
            PV_TRY(add_file(*m_repository.updateinfo, [](Repo* repo, FILE* file) {
                return repo_add_updateinfoxml(repo, file, 0);
            }));
        pool_addfileprovides(m_pool.get());
        pool_createwhatprovides(m_pool.get());
        read_advisories();
        return solve(mode);
    }

  private:
    Pool* pool() const { return m_pool.get(); }
    std::string text(Id id) const { return pool_id2str(pool(), id); }
    Solvable* solvable(Id id) const { return pool()->solvables + id; }
    bool is_advisory(Id id) const { return text(solvable(id)->name).starts_with(kPatchPrefix); }

    // The guest's packages, each header as guestfs/rpm read it; the pool's
    // architecture is the one most of them have (x86_64 when all are noarch).
    Result<void> add_installed(std::string rpmdb) {
        Repo* installed = repo_create(pool(), "@System");
        void* state = rpm_state_create(pool(), nullptr);
        std::map<std::string, int> architectures;
        auto added = guestfs::for_each_rpm_header(
            std::move(rpmdb), [&](Header header, int64_t hnum) -> Result<void> {
                const char* name = headerGetString(header, RPMTAG_NAME);
                if (name != nullptr && std::string_view(name) == "gpg-pubkey")
                    return {};
                void* handle = rpm_byrpmh(state, header);
                if (handle == nullptr ||
                    repo_add_rpm_handle(installed, handle,
                                        REPO_REUSE_REPODATA | REPO_NO_INTERNALIZE) == 0)
                    return fail(make_error("read rpm's database",
                                           fmt::format("libsolv does not accept package {}: {}",
                                                       hnum, pool_errstr(pool()))));
                const char* arch = headerGetString(header, RPMTAG_ARCH);
                if (arch != nullptr && std::string_view(arch) != "noarch")
                    ++architectures[arch];
                return {};
            });
        rpm_state_free(state);
        PV_TRY(added);
        repo_internalize(installed);
        pool_set_installed(pool(), installed);
        std::string arch = "x86_64";
        int most = 0;
        for (const auto& [name, count] : architectures)
            if (count > most)
                std::tie(arch, most) = std::tie(name, count);
        pool_setarch(pool(), arch.c_str());
        return {};
    }

    template <class Add>
    Result<void> add_file(const std::string& path, Add add) {
        FILE* file = solv_xfopen(path.c_str(), "r");
        if (file == nullptr)
            return fail(errno_error("open " + path));
        const int added = add(m_available, file);
        std::fclose(file);
        if (added != 0)
            return fail(make_error("read " + path, pool_errstr(pool())));
        return {};
    }

    void read_advisories() {
        Id id = 0;
        Solvable* s = nullptr;
        FOR_REPO_SOLVABLES(m_available, id, s) {
            if (!is_advisory(id))
                continue;
            Advisory advisory;
            advisory.solvable = id;
            advisory.id = text(s->name).substr(kPatchPrefix.size());
            const char* category = solvable_lookup_str(s, SOLVABLE_PATCHCATEGORY);
            advisory.category = category != nullptr ? category : "";
            Dataiterator references;
            dataiterator_init(&references, pool(), nullptr, id, UPDATE_REFERENCE, nullptr, 0);
            while (dataiterator_step(&references)) {
                dataiterator_setpos(&references);
                const char* type = pool_lookup_str(pool(), SOLVID_POS, UPDATE_REFERENCE_TYPE);
                const char* reference = pool_lookup_str(pool(), SOLVID_POS, UPDATE_REFERENCE_ID);
                if (type != nullptr && reference != nullptr && std::strcmp(type, "cve") == 0)
                    advisory.cves.emplace_back(reference);
            }
            dataiterator_free(&references);
            IdQueue conflicts;
            solvable_lookup_deparray(s, SOLVABLE_CONFLICTS, conflicts.get(), -1);
            for (Id dependency : conflicts.ids()) {
                if (!ISRELDEP(dependency))
                    continue;
                const Reldep* older = GETRELDEP(pool(), dependency);
                if (older->flags != REL_LT)
                    continue;
                Id name = older->name;
                if (ISRELDEP(name) && GETRELDEP(pool(), name)->flags == REL_ARCH)
                    name = GETRELDEP(pool(), name)->name;
                advisory.fixes.push_back({text(name), text(older->evr), dependency});
            }
            m_advisories.push_back(std::move(advisory));
        }
    }

    // Whether an installed package is older than a version ADVISORY fixes.
    bool applies(const Advisory& advisory) const {
        // FOR_PROVIDES names the pool `pool`.
        Pool* pool = this->pool();
        for (const auto& fix : advisory.fixes) {
            Id provider = 0;
            Id providers = 0;
            FOR_PROVIDES(provider, providers, fix.dependency)
            if (solvable(provider)->repo == pool->installed)
                return true;
        }
        return false;
    }

    Result<RpmResolution> solve(UpgradeMode mode) {
        IdQueue jobs;
        if (mode == UpgradeMode::full)
            queue_push2(jobs.get(), SOLVER_UPDATE | SOLVER_SOLVABLE_ALL, 0);
        else
            for (const auto& advisory : m_advisories)
                if (advisory.category == "security" && applies(advisory))
                    queue_push2(jobs.get(), SOLVER_INSTALL | SOLVER_SOLVABLE, advisory.solvable);
        std::unique_ptr<Solver, FreeSolver> solver(solver_create(pool()));
        solver_set_flag(solver.get(), SOLVER_FLAG_ALLOW_UNINSTALL, 0);
        solver_set_flag(solver.get(), SOLVER_FLAG_ALLOW_DOWNGRADE, 0);
        solver_set_flag(solver.get(), SOLVER_FLAG_ALLOW_VENDORCHANGE, 1);
        if (const int problems = solver_solve(solver.get(), jobs.get()); problems > 0) {
            std::string text;
            for (Id problem = 1; problem <= problems; ++problem)
                text += (text.empty() ? "" : "; ") +
                        std::string(solver_problem2str(solver.get(), problem));
            return fail(make_error("resolve the update with libsolv", text));
        }
        std::unique_ptr<Transaction, FreeTransaction> transaction(
            solver_create_transaction(solver.get()));
        transaction_order(transaction.get(), 0);
        RpmResolution resolution;
        std::set<Id> replaced;
        for (Id step : std::span(transaction->steps.elements,
                                 static_cast<size_t>(transaction->steps.count))) {
            if (solvable(step)->repo == pool()->installed || is_advisory(step))
                continue;
            IdQueue old;
            transaction_all_obs_pkgs(transaction.get(), step, old.get());
            replaced.insert(old.ids().begin(), old.ids().end());
            auto planned =
                PV_TRY(plan_entry(step, old.ids().empty() ? 0 : old.ids().front(), *solver, mode));
            if (planned.action == PatchAction::upgrade)
                resolution.advisories[planned.name] = fixed_by(planned);
            resolution.resolution.plan.push_back(std::move(planned));
        }
        for (Id step :
             std::span(transaction->steps.elements, static_cast<size_t>(transaction->steps.count)))
            if (solvable(step)->repo == pool()->installed && !replaced.contains(step))
                return fail(make_error(
                    "resolve the update with libsolv",
                    fmt::format("the update would remove {}-{}; patchvisor never removes packages",
                                text(solvable(step)->name), text(solvable(step)->evr))));
        resolution.resolution.kept_back = kept_back(replaced, mode);
        return resolution;
    }

    Result<PlannedPackage> plan_entry(Id id, Id old, Solver& solver, UpgradeMode mode) const {
        Solvable* s = solvable(id);
        PlannedPackage planned;
        planned.name = text(s->name);
        planned.architecture = text(s->arch);
        planned.to_version = text(s->evr);
        planned.suite = "rpm-md";
        unsigned int medium = 0;
        const char* location = solvable_lookup_location(s, &medium);
        if (location == nullptr || location[0] == '/' || std::strstr(location, "..") != nullptr)
            return fail(make_error("read " + m_repository.primary,
                                   fmt::format("{}-{} has no location inside the repository",
                                               planned.name, planned.to_version)));
        planned.file = m_repository.root + "/" + location;
        Id checksum_type = 0;
        const char* checksum = solvable_lookup_checksum(s, SOLVABLE_CHECKSUM, &checksum_type);
        if (checksum == nullptr || checksum_type != REPOKEY_TYPE_SHA256)
            return fail(make_error(
                "read " + m_repository.primary,
                fmt::format("{}-{} has no SHA-256 checksum", planned.name, planned.to_version)));
        planned.sha256 = checksum;
        planned.size = solvable_lookup_num(s, SOLVABLE_DOWNLOADSIZE, 0);
        if (old != 0) {
            planned.from_version = text(solvable(old)->evr);
            planned.from_architecture = text(solvable(old)->arch);
            planned.action = PatchAction::upgrade;
            const auto fixes = fixed_by(planned);
            planned.security = std::any_of(fixes.begin(), fixes.end(), [&](const auto& fixed) {
                return category_of(fixed.id) == "security";
            });
            planned.reason = planned.security ? "security update (" + fixes.front().id + ")"
                             : mode == UpgradeMode::full ? "update (--upgrade full)"
                                                         : "needed by a security update";
            return planned;
        }
        planned.action = PatchAction::install;
        planned.reason = "new dependency" + dependent_of(id, solver);
        return planned;
    }

    // " of NAME (Requires: DEP)" when libsolv says why it chose ID.
    std::string dependent_of(Id id, Solver& solver) const {
        Id rule = 0;
        // Resolved or propagated from a unit rule: either way the rule says why.
        solver_describe_decision(&solver, id, &rule);
        if (rule <= 0)
            return "";
        Id from = 0;
        Id to = 0;
        Id dependency = 0;
        if (solver_ruleinfo(&solver, rule, &from, &to, &dependency) != SOLVER_RULE_PKG_REQUIRES ||
            from == 0)
            return "";
        return fmt::format(" of {} (Requires: {})", text(solvable(from)->name),
                           pool_dep2str(pool(), dependency));
    }

    std::string category_of(const std::string& id) const {
        for (const auto& advisory : m_advisories)
            if (advisory.id == id)
                return advisory.category;
        return "";
    }

    // The advisories whose fixed version of PLANNED's package lies in
    // (installed, planned].
    std::vector<FixedAdvisory> fixed_by(const PlannedPackage& planned) const {
        std::vector<FixedAdvisory> fixed;
        for (const auto& advisory : m_advisories)
            for (const auto& fix : advisory.fixes)
                if (fix.package == planned.name &&
                    pool_evrcmp_str(pool(), planned.from_version.c_str(), fix.evr.c_str(),
                                    EVRCMP_COMPARE) < 0 &&
                    pool_evrcmp_str(pool(), fix.evr.c_str(), planned.to_version.c_str(),
                                    EVRCMP_COMPARE) <= 0) {
                    fixed.push_back({advisory.id, advisory.cves, fix.evr});
                    break;
                }
        return fixed;
    }

    std::vector<KeptBack> kept_back(const std::set<Id>& replaced, UpgradeMode mode) const {
        std::vector<KeptBack> kept;
        Pool* pool = this->pool();  // for FOR_PROVIDES
        Id id = 0;
        Solvable* s = nullptr;
        FOR_REPO_SOLVABLES(pool->installed, id, s) {
            if (replaced.contains(id))
                continue;
            Id newest = 0;
            Id provider = 0;
            Id providers = 0;
            FOR_PROVIDES(provider, providers, s->name) {
                const Solvable* candidate = solvable(provider);
                if (candidate->repo != m_available || candidate->name != s->name ||
                    (candidate->arch != s->arch && text(candidate->arch) != "noarch"))
                    continue;
                const Id best = newest != 0 ? solvable(newest)->evr : s->evr;
                if (pool_evrcmp(pool, candidate->evr, best, EVRCMP_COMPARE) > 0)
                    newest = provider;
            }
            if (newest == 0)
                continue;
            kept.push_back({text(s->name), text(s->arch), text(s->evr), text(solvable(newest)->evr),
                            mode == UpgradeMode::security
                                ? "no security advisory of the repository needs it"
                                : "libsolv keeps it (its dependencies cannot be met otherwise)"});
        }
        std::sort(kept.begin(), kept.end(),
                  [](const KeptBack& a, const KeptBack& b) { return a.name < b.name; });
        return kept;
    }

    const RpmMdRepository& m_repository;
    std::unique_ptr<Pool, FreePool> m_pool;
    Repo* m_available = nullptr;
    std::vector<Advisory> m_advisories;
};

}  // namespace

Result<RpmResolution> resolve_rpm_upgrade(const RpmMdRepository& repository, std::string rpmdb,
                                          UpgradeMode mode) {
    return Resolver(repository).run(std::move(rpmdb), mode);
}

}  // namespace pv::patcher::repo
