// Interned strings: label keys and values, names. Pods of one workload share their label sets,
// so interning keeps the per-pod footprint small and makes label comparisons integer compares.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace npt {

using StrId = uint32_t;
inline constexpr StrId kNoStr = 0;  // id 0 is the empty string

class StringPool {
  public:
    StringPool() { intern(""); }
    // The index holds views into storage_: a copy indexes its own strings.
    StringPool(const StringPool& other) : storage_(other.storage_) {
        index_.reserve(storage_.size());
        for (size_t i = 0; i < storage_.size(); ++i)
            index_.emplace(std::string_view(storage_[i]), static_cast<StrId>(i));
    }
    StringPool& operator=(const StringPool&) = delete;
    StringPool(StringPool&&) = default;
    StringPool& operator=(StringPool&&) = default;

    StrId intern(std::string_view s) {
        if (auto it = index_.find(s); it != index_.end()) return it->second;
        const auto id = static_cast<StrId>(storage_.size());
        const std::string& stored = storage_.emplace_back(s);
        index_.emplace(std::string_view(stored), id);
        return id;
    }
    std::optional<StrId> find(std::string_view s) const {
        if (auto it = index_.find(s); it != index_.end()) return it->second;
        return std::nullopt;
    }
    std::string_view view(StrId id) const { return storage_[id]; }
    size_t size() const { return storage_.size(); }

  private:
    std::deque<std::string> storage_;  // stable addresses for the string_view keys
    std::unordered_map<std::string_view, StrId> index_;
};

}  // namespace npt
