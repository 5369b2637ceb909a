// Reading a whole BPF hash map from userspace: in batches where the kernel supports it (5.6+), else one key at a
// time. A full 64k-entry map takes ~16 syscalls instead of ~130k.
#pragma once

#include <bpf/bpf.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace npt::capture {

// Calls fn(key, value) for every entry of the hash map `fd` (entries inserted or deleted meanwhile may be missed
// or seen twice, as with any walk of a live map).
template <typename Key, typename Value, typename Fn>
void walk_map(int fd, Fn&& fn) {
    constexpr uint32_t kBatch = 4096;
    std::vector<Key> keys(kBatch);
    std::vector<Value> values(kBatch);
    // Opaque resume tokens; a hash map uses 4 bytes of them, the size of a key is always enough.
    Key in_token{};
    Key out_token{};
    bool first = true;
    for (;;) {
        uint32_t count = kBatch;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        const int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_token, &out_token, keys.data(), values.data(),
                                             &count, &opts);
        const int code = err < 0 ? errno : 0;
        for (uint32_t i = 0; i < count && (err == 0 || code == ENOENT); ++i) fn(keys[i], values[i]);
        if (err == 0) {
            in_token = out_token;
            first = false;
            continue;
        }
        if (code == ENOENT) return;  // done
        if (!first) return;          // failed half-way (ENOSPC cannot happen with a batch this size)
        break;                       // no batch support: one key at a time
    }
    Key key{};
    Key next{};
    const Key* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        Value v{};
        if (bpf_map_lookup_elem(fd, &next, &v) == 0) fn(next, v);
        key = next;
        prev = &key;
    }
}

}  // namespace npt::capture
