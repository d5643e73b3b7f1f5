// patchvisor fleet end to end on a single-node Slurm cluster (slurmctld,
// slurmd and munged started by tests/e2e/fleet/slurm-cluster in a temp
// directory, stopped after each test, with a watcher that stops them if
// the test dies): six images, one corrupt, give five patched and one failed
// with its image byte-identical; versions are read back with debugfs and
// dpkg-query, never from the reports.

#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/libvirt/test_domains.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

std::string cluster_script() {
    const char* source = std::getenv("PV_SOURCE_DIR");
    return std::string(source ? source : ".") + "/tests/e2e/fleet/slurm-cluster";
}

class Fleet : public ::testing::Test {
  protected:
    void SetUp() override {
        m_catalog = image_artifact("catalog");
        ASSERT_FALSE(m_catalog.empty());
        m_versions = catalog_versions(m_catalog);
        const auto started = run(quote(cluster_script()) + " start " + quote(m_cluster.path()) +
                                 " " + std::to_string(::getpid()));
        ASSERT_EQ(started.exit_code, 0) << started.output;
        m_slurm = "SLURM_CONF=" + quote(m_cluster.file("slurm.conf")) + " ";
    }

    void TearDown() override {
        const auto pids = run("cat " + quote(m_cluster.path()) + "/*.pid 2>/dev/null").output;
        const auto stopped = run(quote(cluster_script()) + " stop " + quote(m_cluster.path()));
        EXPECT_EQ(stopped.exit_code, 0) << stopped.output;
        std::istringstream list(pids);
        for (std::string pid; list >> pid;)
            EXPECT_NE(run("kill -0 " + pid + " 2>/dev/null").exit_code, 0)
                << "daemon " << pid << " outlived the cluster";
    }

    // Runs `patchvisor fleet ARGUMENTS` where Slurm's clients find the cluster.
    CommandOutput fleet(const std::string& arguments) {
        return run(m_slurm + quote(built_binary("patcher/cli/patchvisor")) + " fleet " + arguments +
                   " 2>&1");
    }

    nlohmann::json status_json(const std::string& reports) {
        // run() adds 2>&1; the table on standard error is dropped inside.
        const auto status =
            run("{ " + quote(built_binary("patcher/cli/patchvisor")) +
                " fleet status --json --reports " + quote(reports) + " 2>/dev/null; }");
        return nlohmann::json::parse(status.output);
    }

    TempDir m_cluster;
    TempDir m_dir;
    std::string m_catalog, m_slurm;
    std::map<std::string, std::string> m_versions;
};

TEST_F(Fleet, SixImagesFivePatchedOneFailedAndUnchanged) {
    std::vector<std::string> images;
    std::ofstream list(m_dir.file("images.txt"));
    list << "# six images, two of them qcow2\n";
    for (int i = 0; i < 6; ++i) {
        const bool qcow2 = i % 3 == 2;
        images.push_back(copy_sample(m_dir, qcow2 ? "sample-qcow2" : "sample-raw",
                                     "vm" + std::to_string(i) + (qcow2 ? ".qcow2" : ".raw")));
        list << images.back() << "\n";
    }
    list.close();
    // Task 3's image has no ext4 superblock: its job fails in the sandbox.
    must("dd if=/dev/zero of=" + quote(images[3]) + " bs=1024 seek=1 count=1 conv=notrunc 2>&1");
    const auto broken_sha = sha256_of_file(images[3]);
    const auto reports = m_dir.file("reports");
    const auto submitted =
        fleet("submit " + quote(m_dir.file("images.txt")) + " --catalog " + quote(m_catalog) +
              " --reports " + quote(reports) + " --wait -- --sandbox jail --work-dir " +
              quote(m_dir.file("work")));
    ASSERT_EQ(submitted.exit_code, 0) << submitted.output;

    const auto table = fleet("status --reports " + quote(reports));
    EXPECT_EQ(table.exit_code, 1) << "one task failed: " << table.output;
    EXPECT_NE(table.output.find("6 tasks: 5 patched, 1 failed, 0 nothing to do, 0 pending"),
              std::string::npos)
        << table.output;
    const auto summary = status_json(reports);
    EXPECT_EQ(summary["results"]["patched"], 5);
    EXPECT_EQ(summary["results"]["failed"], 1);
    EXPECT_GT(summary["images_per_minute"].get<double>(), 0);
    EXPECT_GT(summary["phases"]["apply"]["p95"].get<double>(), 0);
    EXPECT_EQ(summary["task_results"][3]["result"], "failed");
    for (size_t i = 0; i < images.size(); ++i) {
        if (i == 3)
            continue;
        EXPECT_EQ(summary["task_results"][i]["result"], "patched") << i;
        for (const auto& [package, version] : m_versions)
            EXPECT_EQ(installed_version(images[i], package), version) << images[i];
    }
    EXPECT_EQ(sha256_of_file(images[3]), broken_sha) << "the failed image must be unchanged";
}

// Domains as tasks: the shut-off one is patched, the running one refused.
TEST_F(Fleet, DomainTasksPatchTheShutOffAndReportTheRunning) {
    const auto off = copy_sample(m_dir, "sample-raw", "off.raw");
    const auto on = copy_sample(m_dir, "sample-raw", "on.raw");
    const auto on_sha = sha256_of_file(on);
    const auto uri = write_test_node(m_dir, {{"idle", 5, false, {{"vda", off, "raw"}}},
                                             {"busy", 1, false, {{"vda", on, "raw"}}}});
    const auto reports = m_dir.file("reports");
    const auto submitted =
        fleet("submit --domains idle,busy --connect " + quote(uri) + " --reports " +
              quote(reports) + " --wait -- --catalog " + quote(m_catalog) +
              " --sandbox jail --work-dir " + quote(m_dir.file("work")));
    ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
    const auto summary = status_json(reports);
    EXPECT_EQ(summary["task_results"][0]["result"], "patched") << summary.dump(2);
    EXPECT_EQ(summary["task_results"][1]["result"], "failed");
    EXPECT_NE(summary["task_results"][1]["error"].get<std::string>().find("it is running"),
              std::string::npos)
        << summary.dump(2);
    for (const auto& [package, version] : m_versions)
        EXPECT_EQ(installed_version(off, package), version);
    EXPECT_EQ(sha256_of_file(on), on_sha);
}

}  // namespace
}  // namespace pv::test
