// The ClusterRole in deploy/ grants exactly what the informers read: get, list and watch on each
// resource, nothing more (least privilege) and nothing less (a missing one is a 403 at start).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>
#include <string>

#include "k8s/api_resources.hpp"

TEST(DeployManifests, ReaderClusterRoleMatchesTheInformers) {
    const YAML::Node role = YAML::LoadFile(std::string(NPT_DEPLOY_DIR) + "/clusterrole-reader.yaml");
    ASSERT_EQ(role["kind"].as<std::string>(), "ClusterRole");
    std::set<std::pair<std::string, std::string>> granted;  // (group, resource)
    for (const auto& rule : role["rules"]) {
        std::set<std::string> verbs;
        for (const auto& v : rule["verbs"]) verbs.insert(v.as<std::string>());
        EXPECT_EQ(verbs, (std::set<std::string>{"get", "list", "watch"}));
        for (const auto& g : rule["apiGroups"])
            for (const auto& r : rule["resources"]) granted.emplace(g.as<std::string>(), r.as<std::string>());
    }
    std::set<std::pair<std::string, std::string>> read;
    for (auto r : npt::k8s::kAllResources) {
        const auto& info = npt::k8s::resource_info(r);
        read.emplace(std::string(info.group), std::string(info.name));
    }
    EXPECT_EQ(granted, read);
}
