#include "netns_inspector.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstring>

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
    const bool entered = run_in_netns(fd, std::forward<Fn>(fn));
    ::close(fd);
    return entered;
}

// Whether nf_tables is in the kernel already. Asking nfnetlink about a subsystem that is not loaded makes the
// kernel load its module: an observer must not change the node, so a modular kernel without nf_tables loaded
// (in /proc/modules, or built in per modules.builtin) has no nftables tables, without asking.
bool nf_tables_loaded() {
    std::ifstream modules("/proc/modules");
    if (!modules) {
        return true;  // no module support: built in or absent, and asking loads nothing
    }
    std::string line;
    while (std::getline(modules, line)) {
        if (line.rfind("nf_tables ", 0) == 0) {
            return true;
        }
    }
    utsname u{};
    if (::uname(&u) != 0) {
        return false;
    }
    std::ifstream builtin(std::string("/lib/modules/") + u.release + "/modules.builtin");
    while (std::getline(builtin, line)) {
        if (line.size() >= 13 && line.compare(line.size() - 13, 13, "/nf_tables.ko") == 0) {
            return true;
        }
    }
    return false;
}

// Whether this thread's netns has at least one nftables table: the first message of an NFT_MSG_GETTABLE dump
// answers it. nullopt when nfnetlink cannot be asked (nf_tables not loaded answers with an error as well).
std::optional<bool> nftables_table_exists() {
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) {
        return std::nullopt;
    }
    const timeval timeout{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    struct {
        nlmsghdr nlh;
        nfgenmsg nfg;
    } req{};
    req.nlh.nlmsg_len = sizeof(req);
    req.nlh.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nlh.nlmsg_seq = 1;
    req.nfg.nfgen_family = AF_UNSPEC;
    req.nfg.version = NFNETLINK_V0;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    std::optional<bool> result;
    if (::sendto(fd, &req, sizeof(req), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) ==
        static_cast<ssize_t>(sizeof(req))) {
        alignas(nlmsghdr) char buf[16384];
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n >= static_cast<ssize_t>(sizeof(nlmsghdr))) {
            nlmsghdr h;
            std::memcpy(&h, buf, sizeof(h));
            if (h.nlmsg_type == NLMSG_DONE) {
                result = false;
            } else if (h.nlmsg_type != NLMSG_ERROR) {
                result = true;
            }
        }
    }
    ::close(fd);
    return result;
}

}  // namespace

std::optional<bool> NetnsInspector::has_nftables_tables(uint32_t netns_inum) {
    const auto now = std::chrono::steady_clock::now();
    if (auto it = nftables_.find(netns_inum); it != nftables_.end() && now - it->second.at < kCacheFor) {
        return it->second.value;
    }
    std::optional<bool> result = false;
    if (nf_tables_loaded()) {
        result = std::nullopt;
        in_netns(netns_inum, [&] { result = nftables_table_exists(); });
    }
    nftables_[netns_inum] = {result, now};
    return result;
}

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
