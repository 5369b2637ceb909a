// Kernel text addresses to function names, from /proc/kallsyms (loaded once) or from a given table (tests).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace npt::capture {

struct KernelSymbol {
    uint64_t addr = 0;
    std::string name;
};

// A function's text: from its symbol to the next text symbol.
struct TextRange {
    std::string name;  // as listed (a compiler clone keeps its suffix)
    uint64_t start = 0;
    uint64_t len = 0;
};

class KernelSymbolizer {
  public:
    struct Resolved {
        std::string_view name;  // as listed, e.g. "br_nf_forward_ip.part.0"
        uint64_t offset = 0;
    };

    KernelSymbolizer() = default;
    explicit KernelSymbolizer(const std::vector<KernelSymbol>& symbols);

    // Text symbols of /proc/kallsyms (or `path`). Fails when addresses are hidden (kptr_restrict, no
    // privilege).
    static Result<KernelSymbolizer> from_kallsyms(const std::string& path);

    std::optional<Resolved> resolve(uint64_t addr) const;
    // The functions named in `names`, their compiler clones included: from each one's symbol to the next.
    std::vector<TextRange> function_ranges(const std::vector<std::string_view>& names) const;
    // "nf_hook_slow+0x9e", or "0xffffffff81f81cee" when unknown.
    std::string describe(uint64_t addr) const;
    size_t size() const { return entries_.size(); }

  private:
    struct Entry {
        uint64_t addr;
        uint32_t name_off;
        uint32_t name_len;
    };
    void add(uint64_t addr, std::string_view name);
    void finish();

    std::vector<Entry> entries_;  // sorted by addr
    std::string names_;           // all names, back to back
};

// The functions of /proc/kallsyms (or `path`) named in `names`, their compiler clones included; an error when
// the file cannot be read or hides its addresses.
Result<std::vector<TextRange>> find_function_ranges(const std::string& path,
                                                    const std::vector<std::string_view>& names);

// "br_nf_forward_ip.part.0" -> "br_nf_forward_ip": compiler clones keep the function's behaviour.
std::string_view base_symbol_name(std::string_view name);

}  // namespace npt::capture
