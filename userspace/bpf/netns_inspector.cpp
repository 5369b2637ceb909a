#include "netns_inspector.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

namespace npt::capture {
namespace {

constexpr auto kCacheFor = std::chrono::seconds(5);

bool same_inode(const std::string& path, uint32_t inum) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && static_cast<uint32_t>(st.st_ino) == inum;
}

// An fd on the netns with this inode: named namespaces first (ip netns), then this process, then any process.
int open_netns(uint32_t inum) {
    for (const char* dir : {"/run/netns", "/var/run/netns"}) {
        if (DIR* d = ::opendir(dir)) {
            while (dirent* e = ::readdir(d)) {
                const std::string path = std::string(dir) + "/" + e->d_name;
                if (e->d_name[0] != '.' && same_inode(path, inum)) {
                    ::closedir(d);
                    return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
                }
            }
            ::closedir(d);
        }
    }
    if (same_inode("/proc/self/ns/net", inum)) {
        return ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    }
    int fd = -1;
    if (DIR* d = ::opendir("/proc")) {
        while (dirent* e = ::readdir(d)) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9') {
                continue;
            }
            const std::string path = std::string("/proc/") + e->d_name + "/ns/net";
            if (same_inode(path, inum)) {
                fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                    break;
                }
            }
        }
        ::closedir(d);
    }
    return fd;
}

bool file_has_content(const char* path) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty()) {
            return true;
        }
    }
    return false;
}

// Runs `fn` on a short-lived thread inside the netns (setns() affects the calling thread only).
template <typename Fn>
bool in_netns(uint32_t netns_inum, Fn&& fn) {
    const int fd = open_netns(netns_inum);
    if (fd < 0) {
        return false;
    }
    bool entered = false;
    std::thread worker([&] {
        if (::setns(fd, CLONE_NEWNET) == 0) {
            entered = true;
            fn();
        }
    });
    worker.join();
    ::close(fd);
    return entered;
}

}  // namespace

std::optional<bool> NetnsInspector::has_iptables_legacy_tables(uint32_t netns_inum) {
    const auto now = std::chrono::steady_clock::now();
    if (auto it = legacy_.find(netns_inum); it != legacy_.end() && now - it->second.at < kCacheFor) {
        return it->second.value;
    }
    std::optional<bool> result;
    in_netns(netns_inum, [&] {
        result = file_has_content("/proc/thread-self/net/ip_tables_names") ||
                 file_has_content("/proc/thread-self/net/ip6_tables_names");
    });
    legacy_[netns_inum] = {result, now};
    return result;
}

std::string NetnsInspector::interface_name(uint32_t netns_inum, uint32_t ifindex) {
    const auto now = std::chrono::steady_clock::now();
    const uint64_t key = (uint64_t{netns_inum} << 32) | ifindex;
    if (auto it = ifnames_.find(key); it != ifnames_.end() && now - it->second.at < kCacheFor) {
        return it->second.value;
    }
    std::string name;
    in_netns(netns_inum, [&] {
        char buf[IF_NAMESIZE] = {};
        if (::if_indextoname(ifindex, buf) != nullptr) {
            name = buf;
        }
    });
    if (ifnames_.size() > 4096) {
        ifnames_.clear();
    }
    ifnames_[key] = {name, now};
    return name;
}

}  // namespace npt::capture
