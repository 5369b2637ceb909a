#include "rule_attribution.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "rule_verdict.skel.h"

namespace npt::capture {
namespace {

struct SkeletonDeleter {
    void operator()(rule_verdict* s) const { rule_verdict__destroy(s); }
};
struct BtfDeleter {
    void operator()(btf* b) const { btf__free(b); }
};
using BtfPtr = std::unique_ptr<btf, BtfDeleter>;

// The kernel's BTF: vmlinux and every loaded module's (/sys/kernel/btf/<module>, split on vmlinux).
struct KernelBtf {
    BtfPtr vmlinux;
    std::vector<BtfPtr> modules;

    static KernelBtf load() {
        KernelBtf k;
        k.vmlinux.reset(btf__load_vmlinux_btf());
        if (!k.vmlinux) {
            return k;
        }
        if (DIR* d = ::opendir("/sys/kernel/btf")) {
            while (dirent* e = ::readdir(d)) {
                if (e->d_name[0] == '.' || std::strcmp(e->d_name, "vmlinux") == 0) {
                    continue;
                }
                const std::string path = std::string("/sys/kernel/btf/") + e->d_name;
                if (btf* m = btf__parse_split(path.c_str(), k.vmlinux.get()); m && !libbpf_get_error(m)) {
                    k.modules.emplace_back(m);
                }
            }
            ::closedir(d);
        }
        return k;
    }

    // The function's prototype in whichever BTF has it, or null.
    const btf_type* func_proto(const char* name, const btf** owner) const {
        if (!vmlinux) {
            return nullptr;
        }
        std::vector<const btf*> all{vmlinux.get()};
        for (const auto& m : modules) {
            all.push_back(m.get());
        }
        for (const btf* b : all) {
            const int id = btf__find_by_name_kind(b, name, BTF_KIND_FUNC);
            if (id > 0) {
                *owner = b;
                return btf__type_by_id(b, btf__type_by_id(b, id)->type);
            }
        }
        return nullptr;
    }

    bool has_func(const char* name) const {
        const btf* owner = nullptr;
        return func_proto(name, &owner) != nullptr;
    }
};

std::string fixed_string(const char* s, size_t n) {
    return std::string(s, strnlen(s, n));
}

}  // namespace

struct RuleAttribution::Impl {
    std::unique_ptr<rule_verdict, SkeletonDeleter> skel;
    std::vector<bpf_link*> links;
    std::vector<std::string> attached;

    ~Impl() {
        for (bpf_link* l : links) {
            bpf_link__destroy(l);
        }
    }
};

RuleVerdict decode_rule_verdict(const npt_rule_value& v) {
    RuleVerdict r;
    r.backend = v.backend == NPT_RV_IPTABLES_LEGACY ? "iptables-legacy" : "nftables";
    r.table = fixed_string(v.table, sizeof(v.table));
    r.chain = fixed_string(v.chain, sizeof(v.chain));
    if (v.has_handle) {
        r.handle = v.handle;
    }
    if (v.backend == NPT_RV_NFTABLES) r.table_family = v.table_family;
    if (v.comment[0] != '\0') {
        r.comment = fixed_string(v.comment, sizeof(v.comment));
    }
    return r;
}

RuleAttribution::RuleAttribution(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RuleAttribution::~RuleAttribution() = default;

Result<std::unique_ptr<RuleAttribution>> RuleAttribution::open(const DebugSink& debug) {
    LibbpfLogCapture log(debug);
    const KernelBtf kernel = KernelBtf::load();
    if (!kernel.vmlinux) {
        return Error{"no kernel BTF"};
    }
    auto impl = std::make_unique<Impl>();
    impl->skel.reset(rule_verdict__open());
    if (!impl->skel) {
        return Error{std::string("opening the BPF object: ") + std::strerror(errno)};
    }
    auto& p = impl->skel->progs;
    // A program whose function is not in the running kernel (its module not loaded) is not loaded either.
    const bool nft = kernel.has_func("nft_do_chain") && kernel.has_func("nft_immediate_eval");
    const struct {
        bpf_program* prog;
        const char* func;
        bool wanted;
    } targets[] = {
        {p.npt_nft_do_chain_exit, "nft_do_chain", nft},
        {p.npt_nft_immediate_exit, "nft_immediate_eval", nft},
        {p.npt_nft_reject_inet_exit, "nft_reject_inet_eval", nft},
        {p.npt_nft_reject_ipv4_exit, "nft_reject_ipv4_eval", nft},
        {p.npt_nft_reject_ipv6_exit, "nft_reject_ipv6_eval", nft},
        {p.npt_ipt_do_table_exit, "ipt_do_table", true},
        {p.npt_ip6t_do_table_exit, "ip6t_do_table", true},
    };
    size_t wanted = 0;
    for (const auto& t : targets) {
        const bool load = t.wanted && kernel.has_func(t.func);
        bpf_program__set_autoload(t.prog, load);
        wanted += load;
    }
    if (wanted == 0) {
        // Before 5.11 modules carry no BTF: fexit cannot reach a modular nf_tables or ip_tables at all.
        return Error{kernel.modules.empty() && ::access("/sys/kernel/btf", F_OK) == 0 &&
                             !std::filesystem::is_empty("/sys/kernel/btf/") && ::access("/proc/modules", F_OK) == 0
                         ? "nf_tables and ip_tables are modules without BTF (before 5.11) or not loaded"
                         : "neither nf_tables nor ip_tables is loaded"};
    }
    // ipt_do_table(priv, skb, state) since 5.16; (skb, state, table) before.
    const btf* owner = nullptr;
    if (const btf_type* proto = kernel.func_proto("ipt_do_table", &owner); proto && btf_vlen(proto) == 3) {
        const char* first = btf__name_by_offset(owner, btf_params(proto)[0].name_off);
        impl->skel->rodata->ipt_priv_first = first == nullptr || std::strcmp(first, "skb") != 0;
    }
    if (int err = rule_verdict__load(impl->skel.get()); err) {
        const std::string detail = log.verifier_error().empty() ? "" : " (" + log.verifier_error() + ")";
        return Error{std::string("fexit refused by this kernel: ") + std::strerror(-err) + detail};
    }
    for (const auto& t : targets) {
        if (!bpf_program__autoload(t.prog)) {
            continue;
        }
        bpf_link* l = bpf_program__attach(t.prog);
        if (l == nullptr) {
            return Error{std::string("attaching fexit to ") + t.func + ": " + std::strerror(errno)};
        }
        impl->links.push_back(l);
        impl->attached.push_back(t.func);
    }
    return std::unique_ptr<RuleAttribution>(new RuleAttribution(std::move(impl)));
}

std::optional<RuleVerdict> RuleAttribution::lookup(const npt_rule_key& key) const {
    npt_rule_value v{};
    if (bpf_map_lookup_elem(bpf_map__fd(impl_->skel->maps.rules), &key, &v) != 0) {
        return std::nullopt;
    }
    return decode_rule_verdict(v);
}

std::string RuleAttribution::description() const {
    std::string out = "fexit on ";
    for (size_t i = 0; i < impl_->attached.size(); ++i) {
        out += (i ? ", " : "") + impl_->attached[i];
    }
    return out;
}

}  // namespace npt::capture
