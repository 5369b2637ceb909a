// libFuzzer target for the netlink parsers of userspace/netfilter, fed with arbitrary message bytes:
//   byte 0 % 4 == 0: nftables trace messages (parse_trace_message), assembled by a TraceAssembler;
//   byte 0 % 4 == 1: rule messages answering NFT_MSG_GETRULE (nft_rule_message_comments);
//   byte 0 % 4 == 2: nfnetlink_log records (parse_nflog_packet);
//   byte 0 % 4 == 3: ctnetlink update events (parse_conntrack_event), counted once by SeenEntries.
// The rest of the input (at most 64 KiB, zero-padded to whole NLMSG_ALIGNTO units as the kernel's datagrams
// are) is one netlink datagram, walked message by message as the listeners do (mnl_nlmsg_ok /
// mnl_nlmsg_next). As the kernel guarantees, a message never claims more than the datagram holds: a header
// whose nlmsg_len is out of range is given the rest of the datagram. Everything else is arbitrary.
//
// Each datagram is parsed twice, from two copies: one on the heap of exactly its size (AddressSanitizer sees
// any overread by instrumented code and by the functions it intercepts: memcpy, strdup, strlen, ...), and one
// ending at a PROT_NONE page (a plain load past it by uninstrumented libmnl/libnftnl code faults). The two
// parses must agree, and the results must satisfy what the callers rely on.
#include <linux/netlink.h>
#include <netinet/in.h>
#include <libmnl/libmnl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "netfilter/conntrack_listener.hpp"
#include "netfilter/nflog_listener.hpp"
#include "netfilter/nft_rule_comment.hpp"
#include "netfilter/packet_tuple.hpp"
#include "netfilter/trace_assembler.hpp"

namespace {

using namespace npt::netfilter;

constexpr size_t kMaxDatagram = 64 * 1024;  // netlink_request's receive buffer (a multiple of NLMSG_ALIGNTO)

// A datagram ending right before an inaccessible page.
class GuardedBuffer {
  public:
    GuardedBuffer() {
        page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        region_ = (kMaxDatagram + page_ - 1) / page_ * page_;
        void* p = mmap(nullptr, region_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) std::abort();
        base_ = static_cast<uint8_t*>(p);
        if (mprotect(base_ + region_, page_, PROT_NONE) != 0) std::abort();
    }
    uint8_t* place(const uint8_t* data, size_t size) {
        uint8_t* start = base_ + region_ - size;
        if (size > 0) std::memcpy(start, data, size);
        return start;
    }

  private:
    size_t page_ = 0;
    size_t region_ = 0;
    uint8_t* base_ = nullptr;
};

bool has_nul(const std::string& s) {
    return s.find('\0') != std::string::npos;
}

// The kernel never sends a message longer than the rest of its datagram: a header claiming less than itself
// or more than what is left is given what is left (it becomes the datagram's last message). Only such
// lengths are passed on: mnl_nlmsg_ok compares them as int, and libmnl 1.0.4 would accept one of 2^31 or
// more and then step outside the buffer (or, at 0xfffffffd and above, loop in place).
void normalize_lengths(std::vector<uint8_t>& datagram) {
    size_t off = 0;
    while (datagram.size() - off >= sizeof(nlmsghdr)) {
        const size_t left = datagram.size() - off;
        uint32_t len;
        std::memcpy(&len, datagram.data() + off + offsetof(nlmsghdr, nlmsg_len), sizeof(len));
        if (len < sizeof(nlmsghdr) || len > left) {
            len = static_cast<uint32_t>(left);
            std::memcpy(datagram.data() + off + offsetof(nlmsghdr, nlmsg_len), &len, sizeof(len));
        }
        off += std::min<size_t>(NLMSG_ALIGN(len), left);
    }
}

// The messages of a datagram, as RuleTracer::drain, NflogListener::drain and netlink_request walk them.
template <typename F>
void for_each_message(const uint8_t* buffer, size_t size, F&& f) {
    int len = static_cast<int>(size);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buffer); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
        f(nlh);
    }
}

bool same(const TraceEvent& a, const TraceEvent& b) {
    return a.id == b.id && a.type == b.type && a.family == b.family && a.table == b.table && a.chain == b.chain &&
           a.rule_handle == b.rule_handle && a.verdict == b.verdict && a.jump_target == b.jump_target &&
           a.has_packet == b.has_packet && a.tuple == b.tuple && a.iif == b.iif && a.oif == b.oif;
}

void check_tuple(const std::optional<PacketTuple>& tuple) {
    if (tuple && tuple->src.family != tuple->dst.family) std::abort();
}

RuleComments fake_comments(uint32_t family, const std::string& table, const std::string& chain, uint64_t handle) {
    if (handle % 3 == 0) return {};
    RuleComments out{std::to_string(family) + "/" + table + "/" + chain + "/" + std::to_string(handle)};
    if (handle % 3 == 2) out.push_back("cali:second");
    return out;
}

void fuzz_trace(const std::vector<const nlmsghdr*>& heap, const std::vector<const nlmsghdr*>& guarded) {
    TraceAssembler assembler(fake_comments, 4);
    for (size_t i = 0; i < heap.size(); ++i) {
        const auto event = parse_trace_message(heap[i]);
        const auto again = parse_trace_message(guarded[i]);
        if (event.has_value() != again.has_value() || (event && !same(*event, *again))) std::abort();
        if (!event) continue;
        if (has_nul(event->table) || has_nul(event->chain) || has_nul(event->jump_target)) std::abort();
        if (event->tuple && !event->has_packet) std::abort();
        check_tuple(event->tuple);

        const auto done = assembler.add(*event);
        if (assembler.partial() > 4) std::abort();
        if (!done) continue;
        const TracedDrop& drop = done->second;
        if (drop.path.empty() || drop.path.back() != drop.chain) std::abort();
        if (drop.jump_comments.size() + 1 != drop.path.size()) std::abort();
        if (drop.returned.size() > 16) std::abort();
        if (drop.chain_policy && (drop.handle || !drop.comments.empty())) std::abort();
        if (drop.table != event->table || drop.chain != event->chain) std::abort();
        check_tuple(done->first);
    }
}

void fuzz_rule(const std::vector<const nlmsghdr*>& heap, const std::vector<const nlmsghdr*>& guarded) {
    for (size_t i = 0; i < heap.size(); ++i) {
        RuleComments comments, again;
        const bool parsed = nft_rule_message_comments(heap[i], &comments);
        const bool parsed_again = nft_rule_message_comments(guarded[i], &again);
        if (parsed != parsed_again || comments != again) std::abort();
        if (!parsed && !comments.empty()) std::abort();
        size_t total = 0;
        for (const auto& c : comments) {
            if (c.empty() || has_nul(c)) std::abort();
            total += c.size();
        }
        if (total >= heap[i]->nlmsg_len && !comments.empty()) std::abort();
    }
}

void fuzz_nflog(const std::vector<const nlmsghdr*>& heap, const std::vector<const nlmsghdr*>& guarded) {
    RecentPackets<NflogRecord> records(1'000'000, 16);
    uint64_t clock = 0;
    for (size_t i = 0; i < heap.size(); ++i) {
        NflogRecord record, record_again;
        std::optional<PacketTuple> tuple, tuple_again;
        const bool parsed = parse_nflog_packet(heap[i], record, tuple);
        const bool parsed_again = parse_nflog_packet(guarded[i], record_again, tuple_again);
        if (parsed != parsed_again || tuple != tuple_again) std::abort();
        if (!parsed) {
            if (tuple) std::abort();
            continue;
        }
        if (record.group != record_again.group || record.prefix != record_again.prefix ||
            record.indev != record_again.indev || record.outdev != record_again.outdev) {
            std::abort();
        }
        if (has_nul(record.prefix) || record.prefix.size() >= heap[i]->nlmsg_len) std::abort();
        check_tuple(tuple);
        if (!tuple) continue;
        records.add(*tuple, ++clock, record);
        const NflogRecord* found = records.find(*tuple, clock, 0);
        if (found == nullptr || found->prefix != record.prefix || records.size() > 16) std::abort();
    }
}

bool same(const ConntrackFlow& a, const ConntrackFlow& b) {
    return a.client == b.client && a.dialled == b.dialled && a.server == b.server && a.dport == b.dport &&
           a.server_port == b.server_port && a.protocol == b.protocol && a.id == b.id && a.status == b.status;
}

void fuzz_conntrack(const std::vector<const nlmsghdr*>& heap, const std::vector<const nlmsghdr*>& guarded) {
    SeenEntries seen(4);
    for (size_t i = 0; i < heap.size(); ++i) {
        ConntrackFlow flow, again;
        const bool parsed = parse_conntrack_event(heap[i], flow);
        const bool parsed_again = parse_conntrack_event(guarded[i], again);
        if (parsed != parsed_again || (parsed && !same(flow, again))) std::abort();
        if (!parsed) continue;
        if (flow.protocol != IPPROTO_UDP && flow.protocol != IPPROTO_SCTP) std::abort();
        if (flow.client.family != flow.dialled.family || flow.client.family != flow.server.family) std::abort();
        const bool first = seen.first(flow);
        if (seen.first(flow) || seen.size() > 4) std::abort();  // the same entry again is never new
        (void)first;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const uint8_t path = data[0] % 4;
    std::vector<uint8_t> datagram(data + 1, data + 1 + std::min(size - 1, kMaxDatagram));
    // The kernel's datagrams are whole NLMSG_ALIGNTO units (libmnl reads attributes up to the aligned end
    // of a message).
    datagram.resize(NLMSG_ALIGN(datagram.size()), 0);
    normalize_lengths(datagram);

    // The heap copy is exactly the datagram; operator new[] aligns it for nlmsghdr.
    auto heap = std::make_unique<uint8_t[]>(datagram.size());
    if (!datagram.empty()) std::memcpy(heap.get(), datagram.data(), datagram.size());
    static GuardedBuffer guard;
    const uint8_t* guarded = guard.place(datagram.data(), datagram.size());

    std::vector<const nlmsghdr*> heap_messages, guarded_messages;
    for_each_message(heap.get(), datagram.size(), [&](const nlmsghdr* nlh) { heap_messages.push_back(nlh); });
    for_each_message(guarded, datagram.size(), [&](const nlmsghdr* nlh) { guarded_messages.push_back(nlh); });
    if (heap_messages.size() != guarded_messages.size()) std::abort();

    switch (path) {
        case 0:
            fuzz_trace(heap_messages, guarded_messages);
            break;
        case 3:
            fuzz_conntrack(heap_messages, guarded_messages);
            break;
        case 1:
            fuzz_rule(heap_messages, guarded_messages);
            break;
        default:
            fuzz_nflog(heap_messages, guarded_messages);
            break;
    }
    return 0;
}
