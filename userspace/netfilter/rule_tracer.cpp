#include "netfilter/rule_tracer.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/trace.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <set>
#include <sstream>

#include "netfilter/netlink_request.hpp"
#include "netfilter/rule_comments.hpp"
#include "netfilter/trace_assembler.hpp"

namespace npt::netfilter {

namespace {

constexpr const char* kTablePrefix = "netpol_trace_";
constexpr int kTraceReceiveBuffer = 4 * 1024 * 1024;
constexpr uint64_t kDropMaxAge = 30'000'000'000ull;  // verdicts are joined within seconds of the drop
constexpr size_t kDropMaxTuples = 8192;

std::string first_line(const char* text) {
    if (text == nullptr) return {};
    std::string s(text);
    const auto nl = s.find('\n');
    if (nl != std::string::npos) s.resize(nl);
    if (s.rfind("Error: ", 0) == 0) s.erase(0, 7);
    return s;
}

bool contains(const std::string& haystack, const char* needle) {
    return haystack.find(needle) != std::string::npos;
}

std::string cap_message() {
    return "--rule-trace needs CAP_NET_ADMIN (run as root)";
}
std::string nf_tables_message() {
    return "nf_tables is not available (modprobe nf_tables)";
}

// A libnftables context that keeps its netlink socket (and with it the owner table) for its lifetime.
struct NftContext {
    nft_ctx* ctx = nullptr;

    NftContext() {
        ctx = nft_ctx_new(NFT_CTX_DEFAULT);
        if (ctx != nullptr) {
            nft_ctx_buffer_output(ctx);
            nft_ctx_buffer_error(ctx);
        }
    }
    ~NftContext() {
        if (ctx != nullptr) nft_ctx_free(ctx);
    }
    NftContext(const NftContext&) = delete;
    NftContext& operator=(const NftContext&) = delete;

    // Runs nft commands as one transaction: nft's output, or the first line of its error message.
    Result<std::string> run(const std::string& commands) {
        nft_ctx_get_output_buffer(ctx);  // reading resets the buffers
        nft_ctx_get_error_buffer(ctx);
        const int rc = nft_run_cmd_from_buffer(ctx, commands.c_str());
        std::string output = nft_ctx_get_output_buffer(ctx);
        const std::string err = first_line(nft_ctx_get_error_buffer(ctx));
        if (rc != 0) return Error{err.empty() ? "nft command failed" : err};
        return output;
    }
};

struct MnlSocket {
    mnl_socket* sock = nullptr;
    ~MnlSocket() {
        if (sock != nullptr) mnl_socket_close(sock);
    }
};

// Opens and binds a NETLINK_NETFILTER socket; the error is an errno.
int open_netfilter_socket(MnlSocket& s, bool nonblocking) {
    s.sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0));
    if (s.sock == nullptr) return errno;
    if (mnl_socket_bind(s.sock, 0, MNL_SOCKET_AUTOPID) < 0) return errno;
    return 0;
}

std::string socket_error(int err) {
    if (err == EPERM || err == EACCES) return cap_message();
    if (err == EPROTONOSUPPORT || err == EAFNOSUPPORT) return nf_tables_message();  // nfnetlink comes with it
    return std::string("cannot open a netfilter netlink socket: ") + std::strerror(err);
}

bool pid_gone(long pid) {
    return pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// libnftnl takes a trace message it does not expect for a broken kernel ABI and exits the process
// (abi_breakage(): no id or type, an attribute of the wrong size, a verdict without a code, a jump without its
// chain; an uninitialized table is read for the last two), and strdup()s string attributes without looking for
// their NUL. The kernel's messages pass the checks below (the same libmnl validators libnftnl runs, with NUL
// terminated strings); anything else is refused before libnftnl sees it.
struct TraceCheck {
    bool ok = true;
    bool id = false;
    bool type = false;
    const nlattr* verdict = nullptr;  // the last one: the one libnftnl parses
};

// Trace attributes of kernels newer than these headers, which newer libnftnl versions check as well.
constexpr uint16_t kTraceCtId = NFTA_TRACE_PAD + 1;
constexpr uint16_t kTraceCtDirection = NFTA_TRACE_PAD + 2;
constexpr uint16_t kTraceCtState = NFTA_TRACE_PAD + 3;
constexpr uint16_t kTraceCtStatus = NFTA_TRACE_PAD + 4;

int check_trace_attr(const nlattr* attr, void* data) {
    auto& check = *static_cast<TraceCheck*>(data);
    auto valid = [attr](mnl_attr_data_type type) { return mnl_attr_validate(attr, type) >= 0; };
    bool ok = true;
    switch (mnl_attr_get_type(attr)) {
        case NFTA_TRACE_TABLE:
        case NFTA_TRACE_CHAIN:
            ok = valid(MNL_TYPE_NUL_STRING);
            break;
        case NFTA_TRACE_RULE_HANDLE:
            ok = valid(MNL_TYPE_U64);
            break;
        case NFTA_TRACE_ID:
            ok = check.id = valid(MNL_TYPE_U32);
            break;
        case NFTA_TRACE_TYPE:
            ok = check.type = valid(MNL_TYPE_U32);
            break;
        case NFTA_TRACE_IIF:
        case NFTA_TRACE_OIF:
        case NFTA_TRACE_MARK:
        case NFTA_TRACE_NFPROTO:
        case NFTA_TRACE_POLICY:
        case kTraceCtId:
        case kTraceCtState:
        case kTraceCtStatus:
            ok = valid(MNL_TYPE_U32);
            break;
        case NFTA_TRACE_IIFTYPE:
        case NFTA_TRACE_OIFTYPE:
            ok = valid(MNL_TYPE_U16);
            break;
        case kTraceCtDirection:
            ok = valid(MNL_TYPE_U8);
            break;
        case NFTA_TRACE_VERDICT:
            ok = valid(MNL_TYPE_NESTED);
            check.verdict = attr;
            break;
        case NFTA_TRACE_LL_HEADER:
        case NFTA_TRACE_NETWORK_HEADER:
        case NFTA_TRACE_TRANSPORT_HEADER:
            ok = mnl_attr_get_payload_len(attr) > 0;
            break;
        default:
            break;
    }
    if (!ok) check.ok = false;
    return MNL_CB_OK;  // libnftnl reads every attribute: so does the check
}

struct VerdictCheck {
    bool ok = true;
    std::optional<uint32_t> code;
    bool chain = false;
};

int check_verdict_attr(const nlattr* attr, void* data) {
    auto& check = *static_cast<VerdictCheck*>(data);
    switch (mnl_attr_get_type(attr)) {
        case NFTA_VERDICT_CODE:
            if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) {
                check.ok = false;
            } else {
                check.code = ntohl(mnl_attr_get_u32(attr));
            }
            break;
        case NFTA_VERDICT_CHAIN:
            if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0) {
                check.ok = false;
            } else {
                check.chain = true;
            }
            break;
        default:
            break;
    }
    return MNL_CB_OK;
}

bool trace_message_parsable(const nlmsghdr* nlh) {
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nfgenmsg))) return false;
    TraceCheck check;
    if (mnl_attr_parse(nlh, sizeof(nfgenmsg), check_trace_attr, &check) < 0) return false;
    if (!check.ok || !check.id || !check.type) return false;
    if (check.verdict == nullptr) return true;
    VerdictCheck verdict;
    if (mnl_attr_parse_nested(check.verdict, check_verdict_attr, &verdict) < 0) return false;
    if (!verdict.ok || !verdict.code) return false;
    const auto code = static_cast<int32_t>(*verdict.code);
    return verdict.chain || (code != NFT_JUMP && code != NFT_GOTO);
}

}  // namespace

// Declared in trace_assembler.hpp; here with the rest of the libnftnl code.
std::optional<TraceEvent> parse_trace_message(const nlmsghdr* nlh) {
    if (!trace_message_parsable(nlh)) return std::nullopt;
    nftnl_trace* t = nftnl_trace_alloc();
    if (t == nullptr) return std::nullopt;
    if (nftnl_trace_nlmsg_parse(nlh, t) < 0) {
        nftnl_trace_free(t);
        return std::nullopt;
    }
    TraceEvent e;
    auto str = [t](uint16_t attr) {
        const char* s = nftnl_trace_is_set(t, attr) ? nftnl_trace_get_str(t, attr) : nullptr;
        return s != nullptr ? std::string(s) : std::string();
    };
    auto data = [t](uint16_t attr) -> std::span<const uint8_t> {
        if (!nftnl_trace_is_set(t, attr)) return {};
        uint32_t len = 0;
        const void* p = nftnl_trace_get_data(t, attr, &len);
        if (p == nullptr) return {};
        return {static_cast<const uint8_t*>(p), len};
    };
    e.id = nftnl_trace_is_set(t, NFTNL_TRACE_ID) ? nftnl_trace_get_u32(t, NFTNL_TRACE_ID) : 0;
    e.type = nftnl_trace_is_set(t, NFTNL_TRACE_TYPE) ? nftnl_trace_get_u32(t, NFTNL_TRACE_TYPE) : 0;
    e.family = nftnl_trace_is_set(t, NFTNL_TRACE_FAMILY) ? nftnl_trace_get_u32(t, NFTNL_TRACE_FAMILY) : 0;
    e.table = str(NFTNL_TRACE_TABLE);
    e.chain = str(NFTNL_TRACE_CHAIN);
    if (nftnl_trace_is_set(t, NFTNL_TRACE_RULE_HANDLE)) e.rule_handle = nftnl_trace_get_u64(t, NFTNL_TRACE_RULE_HANDLE);
    if (e.type == NFT_TRACETYPE_POLICY && nftnl_trace_is_set(t, NFTNL_TRACE_POLICY)) {
        e.verdict = nftnl_trace_get_u32(t, NFTNL_TRACE_POLICY);
    } else if (nftnl_trace_is_set(t, NFTNL_TRACE_VERDICT)) {
        e.verdict = nftnl_trace_get_u32(t, NFTNL_TRACE_VERDICT);
    }
    e.jump_target = str(NFTNL_TRACE_JUMP_TARGET);
    // Only the first message of a base chain run carries the packet (and its interfaces).
    const auto network = data(NFTNL_TRACE_NETWORK_HEADER);
    e.has_packet = !network.empty() || nftnl_trace_is_set(t, NFTNL_TRACE_LL_HEADER);
    if (!network.empty()) e.tuple = parse_packet(network, data(NFTNL_TRACE_TRANSPORT_HEADER));
    if (nftnl_trace_is_set(t, NFTNL_TRACE_IIF)) e.iif = nftnl_trace_get_u32(t, NFTNL_TRACE_IIF);
    if (nftnl_trace_is_set(t, NFTNL_TRACE_OIF)) e.oif = nftnl_trace_get_u32(t, NFTNL_TRACE_OIF);
    nftnl_trace_free(t);
    return e;
}

struct RuleTracer::Impl {
    RuleTracerOptions options;
    std::string table;
    bool owner = true;       // the table carries `flags owner` (kernel >= 5.12)
    bool installed = false;  // the table exists and is ours to delete
    NftContext nft;
    MnlSocket trace;  // NFNLGRP_NFTRACE subscription
    MnlSocket query;  // the probe (NFT_MSG_GETGEN)
    uint32_t seq = static_cast<uint32_t>(time(nullptr));
    MulticastReader reader;
    Stats stats;

    std::unique_ptr<RuleCommentLookup> comments;  // GETRULE for the comments of the rules traced
    TraceAssembler assembler{[this](uint32_t family, const std::string& t, const std::string& chain, uint64_t handle) {
        return comments->get(family, t, chain, handle);
    }};
    RecentPackets<TracedDrop> drops{kDropMaxAge, kDropMaxTuples};
    bool armed = true;       // the trace rules are installed
    bool everything = true;  // trace every packet, not only the watched IPs'

    ~Impl() {
        // With the owner flag the kernel would also remove it when the context's socket closes.
        if (installed) (void)nft.run("delete table inet " + table + "\n");  // nothing to do about a failure here
    }

    // The rules of the three chains, which the caller has flushed. Disarmed: none. The kernel switches its trace
    // checks on for every rule of every chain while a `meta nftrace set` expression exists anywhere, so a disarmed
    // tracer keeps none.
    std::string rules() const {
        if (!armed) return {};
        std::string out = "add rule inet " + table + " trace_it limit name \"trace_rate\" meta nftrace set 1\n";
        for (const char* chain : {"trace_pre", "trace_out"}) {
            const std::string add = "add rule inet " + table + " " + chain + " ";
            // One token per packet: the first match goes to trace_it, which ends the chain (a packet between two
            // watched pods would otherwise be counted once per rule it matches).
            const std::string go = " goto trace_it\n";
            if (everything) {
                out += add + go.substr(1);
                continue;
            }
            out += add + "ip saddr @watched4" + go;
            out += add + "ip daddr @watched4" + go;
            out += add + "ip6 saddr @watched6" + go;
            out += add + "ip6 daddr @watched6" + go;
        }
        return out;
    }

    std::string flush_chains() const {
        std::string out;
        for (const char* chain : {"trace_pre", "trace_out", "trace_it"})
            out += "flush chain inet " + table + " " + chain + "\n";
        return out;
    }

    std::string create_commands(bool with_owner) const {
        std::ostringstream out;
        out << "create table inet " << table << (with_owner ? " { flags owner; }\n" : "\n");
        // The burst is a second's worth: a client retrying, or several flows starting at once, are all traced.
        const uint32_t rate = std::max<uint32_t>(1, options.rate_per_second);
        out << "add limit inet " << table << " trace_rate { rate " << rate << "/second burst " << rate
            << " packets; }\n";
        out << "add set inet " << table << " watched4 { type ipv4_addr; }\n";
        out << "add set inet " << table << " watched6 { type ipv6_addr; }\n";
        out << "add chain inet " << table
            << " trace_pre { type filter hook prerouting priority -350; policy accept; }\n";
        out << "add chain inet " << table << " trace_out { type filter hook output priority -350; policy accept; }\n";
        out << "add chain inet " << table << " trace_it\n";
        out << rules();
        return out.str();
    }

    // Tables of tracers that died on a kernel without owner tables (which the kernel would have removed):
    // netpol_trace_<pid>[_<n>] whose process no longer exists.
    void delete_stale_tables() {
        const auto listing = nft.run("list tables inet\n");
        if (!listing) return;
        std::istringstream lines(*listing);
        std::string line;
        while (std::getline(lines, line)) {
            std::istringstream words(line);
            std::string word, family, name;
            if (!(words >> word >> family >> name) || word != "table" || name.rfind(kTablePrefix, 0) != 0) continue;
            const std::string suffix = name.substr(std::strlen(kTablePrefix));
            const std::string pid = suffix.substr(0, suffix.find('_'));
            if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
            if (pid_gone(std::stol(pid))) (void)nft.run("delete table inet " + name + "\n");  // best effort
        }
    }

    // A failed create of an existing table: EEXIST, or EPERM when another process's socket owns it.
    bool taken(const std::string& error) {
        if (contains(error, "File exists")) return true;
        return contains(error, "Operation not permitted") && nft.run("list table inet " + table + "\n").ok();
    }

    Result<bool> install() {
        if (nft.ctx == nullptr) return Error{"--rule-trace: cannot create an nftables context (out of memory?)"};
        // The default name may be taken by a live tracer whose pid is ours in another pid namespace (two
        // host-network containers): the next free netpol_trace_<pid>_<n> is taken then.
        const bool default_name = options.table.empty();
        const std::string base = table;
        std::string error;
        // Kernels before 5.12 reject the owner flag (nft before 0.9.9 cannot spell it): then a plain table,
        // and cleanup of dead tracers' tables instead.
        for (const bool with_owner : {true, false}) {
            if (!with_owner) delete_stale_tables();
            for (int attempt = 0; attempt < 8; ++attempt) {
                table = attempt == 0 ? base : base + "_" + std::to_string(attempt);
                auto created = nft.run(create_commands(with_owner));
                if (created) {
                    owner = with_owner;
                    return installed = true;
                }
                error = created.error().message;
                if (!default_name || !taken(error)) break;
            }
            if (taken(error)) {
                return Error{"--rule-trace: table inet " + table +
                             " already exists (another tracer?); remove it or pick another name"};
            }
            if (contains(error, "Operation not permitted")) return Error{cap_message()};
        }
        // nf_tables answered the probe: a kernel without an expression the table uses (the limit, nft_limit, is a
        // module on most distributions and loads on demand where modprobe is available).
        const std::string first = error.substr(0, error.find('\n'));
        if (contains(error, "No such file or directory") || contains(error, "Operation not supported"))
            return Error{"--rule-trace cannot install its nftables table (" + first +
                         "): a module of nf_tables may be missing (modprobe nft_limit)"};
        return Error{"--rule-trace cannot install its nftables table: " + first};
    }

    // nf_tables answers a generation request to anyone with CAP_NET_ADMIN: tells the two usual failures apart
    // before nft reports them less clearly.
    Result<bool> probe() {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, ++seq);
        const int err = netlink_request(query.sock, nlh, [](const nlmsghdr*) {});
        if (err == 0) return true;
        if (err == EPERM || err == EACCES) return Error{cap_message()};
        if (err == EINVAL || err == EOPNOTSUPP || err == ENOENT || err == EPROTONOSUPPORT) {
            return Error{nf_tables_message()};
        }
        return Error{std::string("--rule-trace: nf_tables does not answer: ") + std::strerror(err)};
    }

    Result<bool> subscribe() {
        if (int err = open_netfilter_socket(trace, true); err != 0) return Error{socket_error(err)};
        reader.start();
        int group = NFNLGRP_NFTRACE;
        if (mnl_socket_setsockopt(trace.sock, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
            const int err = errno;
            if (err == EPERM || err == EACCES) return Error{cap_message()};
            return Error{std::string("--rule-trace cannot subscribe to nftables trace messages: ") +
                         std::strerror(err)};
        }
        set_receive_buffer(mnl_socket_get_fd(trace.sock), kTraceReceiveBuffer);
        return true;
    }

    // Trace messages carry no time: the verdict is recorded with the span its message was sent in (the kernel sends
    // it before it frees the packet, so the drop's own time falls in or just after that span).
    size_t handle_message(const nlmsghdr* nlh, SentWithin sent) {
        if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES ||
            NFNL_MSG_TYPE(nlh->nlmsg_type) != NFT_MSG_TRACE) {
            return 0;
        }
        ++stats.messages;
        auto event = parse_trace_message(nlh);
        if (!event) return 0;
        if (event->family == NFPROTO_INET && event->table == table) return 0;  // our own nftrace rules
        auto done = assembler.add(*event);
        if (!done) return 0;
        drops.add(done->first, sent, std::move(done->second));
        ++stats.drops;
        return 1;
    }

    size_t drain() {
        size_t completed = 0;
        // Overruns: the kernel dropped messages, some traces stay incomplete.
        reader.drain(
            mnl_socket_get_fd(trace.sock),
            [&](const nlmsghdr* nlh, SentWithin sent) { completed += handle_message(nlh, sent); }, stats.overruns);
        drops.expire(monotonic_ns());
        return completed;
    }
};

RuleTracer::RuleTracer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RuleTracer::~RuleTracer() = default;

Result<std::unique_ptr<RuleTracer>> RuleTracer::open(const RuleTracerOptions& options) {
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    impl->table = options.table.empty() ? kTablePrefix + std::to_string(getpid()) : options.table;
    if (impl->table.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            std::string::npos ||
        !std::isalpha(static_cast<unsigned char>(impl->table[0]))) {
        return Error{"--rule-trace: invalid table name '" + impl->table + "' (letters, digits, '_' and '-')"};
    }

    if (int err = open_netfilter_socket(impl->query, false); err != 0) return Error{socket_error(err)};
    if (auto probed = impl->probe(); !probed) return probed.error();
    auto comments = RuleCommentLookup::open();
    if (!comments) return Error{"--rule-trace: " + comments.error().message};
    impl->comments = std::move(*comments);
    // Subscribe first so that no trace of the table's first packets is missed.
    if (auto subscribed = impl->subscribe(); !subscribed) return subscribed.error();
    if (auto installed = impl->install(); !installed) return installed.error();
    return std::unique_ptr<RuleTracer>(new RuleTracer(std::move(impl)));
}

Result<bool> RuleTracer::set_watched(const std::vector<IpAddr>& ips, bool everything) {
    const std::string& t = impl_->table;
    std::set<std::string> v4, v6;
    for (const auto& ip : ips) (ip.is_v4() ? v4 : v6).insert(ip.str());

    std::string commands = impl_->flush_chains();
    commands += "flush set inet " + t + " watched4\n";
    commands += "flush set inet " + t + " watched6\n";
    auto add_elements = [&](const char* set, const std::set<std::string>& elements) {
        if (elements.empty()) return;
        commands += "add element inet " + t + " " + set + " { ";
        bool first = true;
        for (const auto& e : elements) {
            commands += (first ? "" : ", ") + e;
            first = false;
        }
        commands += " }\n";
    };
    if (!everything) {
        add_elements("watched4", v4);
        add_elements("watched6", v6);
    }
    const bool was_everything = impl_->everything;
    impl_->everything = everything;
    commands += impl_->rules();

    if (auto updated = impl_->nft.run(commands); !updated) {
        impl_->everything = was_everything;
        return Error{"--rule-trace cannot update the watched IPs: " + updated.error().message};
    }
    return true;
}

Result<bool> RuleTracer::set_armed(bool armed) {
    if (armed == impl_->armed) return true;
    impl_->armed = armed;
    if (auto updated = impl_->nft.run(impl_->flush_chains() + impl_->rules()); !updated) {
        impl_->armed = !armed;
        return Error{std::string("--rule-trace cannot ") + (armed ? "resume" : "pause") +
                     " tracing: " + updated.error().message};
    }
    return true;
}

bool RuleTracer::armed() const {
    return impl_->armed;
}

int RuleTracer::fd() const {
    return mnl_socket_get_fd(impl_->trace.sock);
}

size_t RuleTracer::drain() {
    return impl_->drain();
}

const TracedDrop* RuleTracer::find(const PacketTuple& tuple, uint64_t at_ns, uint64_t window_ns) const {
    return impl_->drops.find(tuple, at_ns, window_ns);
}

const std::string& RuleTracer::table_name() const {
    return impl_->table;
}

RuleTracer::Stats RuleTracer::stats() const {
    Stats s = impl_->stats;
    s.rule_lookups = impl_->comments->lookups();
    s.lookup_failures = impl_->comments->failures();
    return s;
}

}  // namespace npt::netfilter
