#include "state/state_loader.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <sstream>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "state/json_scan.hpp"
#include "state/k8s_decode.hpp"
#include "state/node_adapter.hpp"

namespace npt {

namespace {

using detail::JsonNode;
using detail::NodeType;
using detail::YamlNode;

constexpr int kMaxListDepth = 4;
// YAML aliases let a few bytes stand for an exponential tree; no real document visits more than
// a few nodes per byte, so the decoders stop past this many visits per input byte.
constexpr size_t kYamlNodesPerByte = 16;
constexpr size_t kYamlNodesMin = 1 << 16;

struct Batch {
    ClusterObjects objects;
    LoadStats stats;
    // For a list loaded item by item: its size in bytes and the bytes loaded so far, from which
    // the object vectors are sized when they grow.
    size_t list_bytes = 0;
    size_t list_bytes_seen = 0;
};

// Memory about to be written front to back for the first time: with transparent huge pages in
// madvise mode, a page fault per 2 MB instead of per 4 KB (on virtual machines a fault can cost
// tens of microseconds). Only whole huge pages inside the range are advised.
void advise_huge_pages(const void* data, size_t bytes) {
    constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
    const auto at = reinterpret_cast<uintptr_t>(data);
    const uintptr_t begin = (at + kHugePage - 1) & ~(kHugePage - 1);
    const uintptr_t end = (at + bytes) & ~(kHugePage - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

// Appends to one of the batch's vectors. Growing by doubling moves each object about twice more,
// into memory touched for the first time; from the share of a list read so far the final count is
// extrapolated instead (once a few objects of the kind give a fair average), so a large vector
// grows about twice.
template <typename T>
void add_to(const Batch& b, std::vector<T>& v, T&& x) {
    constexpr size_t kSample = 64;
    if (v.size() == v.capacity() && v.size() >= kSample && b.list_bytes > b.list_bytes_seen && b.list_bytes_seen > 0) {
        const double share = static_cast<double>(b.list_bytes) / static_cast<double>(b.list_bytes_seen);
        const auto expected = static_cast<size_t>(static_cast<double>(v.size()) * share * 1.02) + kSample;
        v.reserve(std::max(expected, v.size() + v.size() / 4));
        const size_t used = v.size() * sizeof(T);
        advise_huge_pages(reinterpret_cast<const char*>(v.data()) + used, v.capacity() * sizeof(T) - used);
    }
    v.push_back(std::move(x));
}

template <typename... F>
struct Overloaded : F... {
    using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

void add_object(Batch& b, DecodedObject&& obj) {
    ClusterObjects& o = b.objects;
    std::visit(Overloaded{
                   [&](IgnoredObject& x) {
                       ++b.stats.ignored_kinds;
                       ++b.stats.ignored_by_kind[x.api_version.empty() ? x.kind : x.api_version + " " + x.kind];
                   },
                   [&](NamespaceInfo& x) { add_to(b, o.namespaces, std::move(x)); },
                   [&](PodInfo& x) { add_to(b, o.pods, std::move(x)); },
                   [&](NetworkPolicy& x) { add_to(b, o.policies, std::move(x)); },
                   [&](ServiceInfo& x) { add_to(b, o.services, std::move(x)); },
                   [&](EndpointSliceInfo& x) { add_to(b, o.endpoint_slices, std::move(x)); },
                   [&](EndpointsInfo& x) {
                       for (auto& s : x.slices) add_to(b, o.endpoint_slices, std::move(s));
                   },
                   [&](NodeInfo& x) { add_to(b, o.nodes, std::move(x)); },
                   [&](ClusterNetworkPolicy& x) { add_to(b, o.cluster_policies, std::move(x)); },
                   [&](ReplicaSetInfo& x) { add_to(b, o.replica_sets, std::move(x)); },
               },
               obj);
    if (!std::holds_alternative<IgnoredObject>(obj)) ++b.stats.objects;
}

// A parser's message on one line: yaml-cpp quotes the offending character raw, newline included.
std::string one_line(std::string_view message) {
    std::string out;
    for (char ch : message) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\n') {
            out += "\\n";
        } else if (c < 0x20 || c == 0x7f) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += ch;
        }
    }
    return out;
}

bool is_list_kind(std::string_view kind) {
    return kind.size() >= 4 && kind.substr(kind.size() - 4) == "List";
}

// The items of a list, one by one: f(index, item) until f returns false. Returns false when f
// stopped the walk.
template <typename A>
using ItemWalk = std::function<bool(const std::function<bool(size_t, const A&)>&)>;

template <typename A>
std::optional<std::string> load_node(Batch& b, const A& node, const DecodeContext& dc, int depth);

// The kind and apiVersion a list gives its items that omit them: PodList -> Pod.
std::pair<std::string_view, std::string_view> list_item_defaults(bool top_array, std::string_view kind,
                                                                 std::string_view api_version) {
    if (top_array) return {};
    return {kind == "List" ? std::string_view() : kind.substr(0, kind.size() - 4), api_version};
}

// The items of a list (`kind` ends in "List", or a top-level array) whose items `walk` visits.
template <typename A>
std::optional<std::string> load_list_items(Batch& b, bool top_array, std::string_view kind,
                                           std::string_view api_version, const DecodeContext& dc, int depth,
                                           const ItemWalk<A>& walk) {
    const std::string prefix = dc.where.empty() ? std::string() : std::string(dc.where) + ".";
    DecodeContext item_dc;
    item_dc.node_budget = dc.node_budget;
    std::tie(item_dc.default_kind, item_dc.default_api_version) = list_item_defaults(top_array, kind, api_version);
    std::optional<std::string> error;
    std::string where;
    walk([&](size_t i, const A& item) {
        where = top_array ? fmt::format("[{}]", i) : fmt::format("{}items[{}]", prefix, i);
        item_dc.where = where;
        // Items are charged too: aliased lists of cheap objects must not escape the bound.
        if (dc.node_budget) {
            if (*dc.node_budget == 0) {
                error = fmt::format("{}: document expands to too many nodes (YAML aliases?)", where);
                return false;
            }
            --*dc.node_budget;
        }
        error = load_node(b, item, item_dc, depth + 1);
        return !error;
    });
    return error;
}

// The kind and apiVersion a node declares, or the defaults its list gave it.
template <typename A>
std::pair<std::string_view, std::string_view> kind_and_api_version(const A& node, const DecodeContext& dc) {
    std::string_view kind = dc.default_kind;
    std::string_view api_version = dc.default_api_version;
    if (node.type() == NodeType::Map) {
        if (const A k = node.get("kind"); k.type() == NodeType::String) kind = k.string();
        if (const A v = node.get("apiVersion"); v.type() == NodeType::String) api_version = v.string();
    }
    return {kind, api_version};
}

// One object, a list of objects, or (top level only) an array of objects. Returns the error
// message without the source prefix.
template <typename A>
std::optional<std::string> load_node(Batch& b, const A& node, const DecodeContext& dc, int depth) {
    const auto [kind, api_version] = kind_and_api_version(node, dc);
    const bool top_array = depth == 0 && node.type() == NodeType::List;
    if (!top_array && !(node.type() == NodeType::Map && is_list_kind(kind))) {
        auto decoded = decode_object(node.raw(), dc);
        if (!decoded) return decoded.error().message;
        add_object(b, std::move(*decoded));
        return std::nullopt;
    }

    if (depth >= kMaxListDepth) {
        return fmt::format("{}items: lists nested too deeply",
                           dc.where.empty() ? std::string() : std::string(dc.where) + ".");
    }
    const A items = top_array ? node : node.get("items");
    if (items.type() != NodeType::List && items.type() != NodeType::Missing) {
        return fmt::format("{}items: expected a list, got {}",
                           dc.where.empty() ? std::string() : std::string(dc.where) + ".",
                           detail::node_type_phrase(items.type()));
    }
    const ItemWalk<A> walk = [&](const std::function<bool(size_t, const A&)>& f) { return items.for_each_item(f); };
    return load_list_items<A>(b, top_array, kind, api_version, dc, depth, walk);
}

// ---- JSON lists, item by item ----
//
// A large state is one JSON list whose items hold nearly all of its bytes. Parsed whole, simdjson
// builds its index and tape for all of it: memory several times the size of the text, touched
// once, where first-touch page faults cost more than the parse itself on virtual machines. A list
// is instead cut into its items by bracket matching outside strings, and each item is parsed by
// one reused parser whose buffers stay warm; a file is read piece by piece into one reused
// buffer. simdjson still validates every byte: each item, and the rest of the document (the text
// with the items array emptied), so what loads this way is exactly what the whole-document parser
// accepts, with the same objects in the same order. Anything else (a single object, invalid JSON,
// an object the decoders reject) is parsed whole, which also reports its error exactly as before.

// The bytes of a JSON text in a window that slides forward: the whole text in memory, or a file
// read piece by piece into one reused buffer, which SIMDJSON_PADDING spare bytes always follow.
class JsonWindow {
  public:
    // `padded`: SIMDJSON_PADDING readable bytes follow the text.
    JsonWindow(std::string_view text, bool padded) : bytes_(text), padded_(padded) {}
    // Reads fd from its current offset.
    JsonWindow(int fd, size_t piece) : fd_(fd), piece_(piece) {}
    JsonWindow(const JsonWindow&) = delete;
    JsonWindow& operator=(const JsonWindow&) = delete;

    std::string_view bytes() const { return bytes_; }
    size_t offset() const { return offset_; }  // of bytes()[0] in the input

    // Whether simdjson may parse bytes() up to `end` in place.
    bool padded_after(size_t end) const {
        return fd_ >= 0 || padded_ || end + simdjson::SIMDJSON_PADDING <= bytes_.size();
    }

    // Drops the bytes before `keep` and reads more after the others. False at the end of the
    // input, or on a read error (read_error() is then its errno).
    bool advance(size_t keep) {
        if (fd_ < 0 || done_) return false;
        const size_t kept = bytes_.size() - keep;
        if (kept + piece_ > cap_) {
            // A value larger than the window doubles it, so rescanning it stays linear.
            const size_t cap = std::max(kept + piece_, cap_ * 2);
            auto next = std::make_unique_for_overwrite<char[]>(cap + simdjson::SIMDJSON_PADDING);
            if (kept) std::memcpy(next.get(), bytes_.data() + keep, kept);
            buf_ = std::move(next);
            cap_ = cap;
        } else if (kept) {
            std::memmove(buf_.get(), bytes_.data() + keep, kept);
        }
        offset_ += keep;
        size_t len = kept;
        while (len < cap_) {
            const ssize_t n = ::read(fd_, buf_.get() + len, cap_ - len);
            if (n > 0) {
                len += static_cast<size_t>(n);
                break;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) error_ = errno;
            done_ = true;
            break;
        }
        std::memset(buf_.get() + len, ' ', simdjson::SIMDJSON_PADDING);  // never read as part of a value
        bytes_ = std::string_view(buf_.get(), len);
        return len > kept;
    }

    int read_error() const { return error_; }

  private:
    std::string_view bytes_;
    bool padded_ = false;
    int fd_ = -1;
    size_t piece_ = 0;
    size_t offset_ = 0;
    std::unique_ptr<char[]> buf_;
    size_t cap_ = 0;
    bool done_ = false;
    int error_ = 0;
};

// Whether an item names its own kind and apiVersion, so that its list's defaults do not matter.
bool declares_kind(const JsonNode& item) {
    if (item.type() != NodeType::Map) return false;
    const JsonNode kind = item.get("kind");
    const JsonNode api_version = item.get("apiVersion");
    return kind.type() == NodeType::String && !kind.string().empty() && api_version.type() == NodeType::String &&
           !api_version.string().empty();
}

// Items are parsed with a parser of this capacity; a larger item grows it.
constexpr size_t kItemParserCapacity = 64 << 10;

// Loads the JSON list whose text starts at `start` in `w`, item by item. False when the input is
// not such a list or does not load cleanly this way: the caller then parses it whole (and `b` may
// hold part of the objects).
bool load_json_list_by_items(JsonWindow& w, size_t start, Batch& b) {
    constexpr auto npos = std::string_view::npos;
    // Positions are offsets in the input; the window keeps the bytes from `keep` on.
    auto byte_at = [&](size_t pos) { return w.bytes()[pos - w.offset()]; };
    auto next_token = [&](size_t pos, size_t keep) -> size_t {
        while (true) {
            const size_t j = json_scan::skip_space(w.bytes(), pos - w.offset());
            if (j < w.bytes().size()) return w.offset() + j;
            pos = w.offset() + j;
            if (!w.advance(keep - w.offset())) return npos;
        }
    };
    auto value_end = [&](size_t pos, size_t keep) -> size_t {
        while (true) {
            const size_t end = json_scan::value_end(w.bytes(), pos - w.offset());
            if (end != npos) return w.offset() + end;
            if (!w.advance(keep - w.offset())) return npos;
        }
    };

    // The members before the items (none for a top-level array); nothing is dropped from the window
    // until the items begin.
    size_t pos = next_token(start, 0);
    if (pos == npos) return false;
    const bool top_array = byte_at(pos) == '[';
    if (byte_at(pos) == '{') {
        pos = next_token(pos + 1, 0);
        while (true) {
            if (pos == npos || byte_at(pos) != '"') return false;
            const size_t key_end = value_end(pos, 0);
            if (key_end == npos) return false;
            const std::string_view key = w.bytes().substr(pos + 1, key_end - pos - 2);
            if (key.find('\\') != npos) return false;  // the parser compares keys unescaped
            const bool items = key == "items";
            pos = next_token(key_end, 0);
            if (pos == npos || byte_at(pos) != ':') return false;
            pos = next_token(pos + 1, 0);
            if (pos == npos) return false;
            if (items) break;  // the first "items" is the one the parser's lookup finds
            const size_t end = value_end(pos, 0);
            if (end == npos) return false;
            pos = next_token(end, 0);
            if (pos == npos || byte_at(pos) != ',') return false;
            pos = next_token(pos + 1, 0);
        }
        if (byte_at(pos) != '[') return false;
    } else if (!top_array) {
        return false;
    }
    const size_t open = pos;
    std::string skeleton(w.bytes().substr(start, open + 1 - start));

    // A list's kind and apiVersion usually come before its items (API responses) but may follow
    // them (kubectl sorts keys). Items are decoded with what precedes them; an item that relies on
    // its list's defaults is checked against the whole document's at the end.
    std::string head_kind = "List";
    std::string head_api_version;
    if (!top_array) {
        simdjson::dom::parser head_parser;
        simdjson::dom::element head;
        if (head_parser.parse(skeleton + "]}").get(head) != simdjson::SUCCESS) return false;
        const auto [kind, api_version] = kind_and_api_version(JsonNode(head), DecodeContext{});
        if (!kind.empty()) head_kind = kind;
        head_api_version = api_version;
        if (!is_list_kind(head_kind)) return false;  // an object with an "items" field
    }

    // Nested in the document, an item may go as deep as the parser's limit less its own depth.
    const size_t item_depth = top_array ? 1 : 2;
    simdjson::dom::parser parser;
    if (parser.allocate(kItemParserCapacity, simdjson::DEFAULT_MAX_DEPTH - item_depth) != simdjson::SUCCESS)
        return false;
    bool parsed = true;
    bool uses_defaults = false;
    size_t close = npos;
    const ItemWalk<JsonNode> walk = [&](const std::function<bool(size_t, const JsonNode&)>& f) {
        size_t at = next_token(open + 1, open + 1);
        if (at != npos && byte_at(at) == ']') {
            close = at;
            return true;
        }
        for (size_t index = 0; at != npos; ++index) {
            const size_t end = value_end(at, at);
            if (end == npos || end == at) break;
            const size_t from = at - w.offset();
            simdjson::dom::element item;
            const auto err =
                parser.parse(w.bytes().data() + from, end - at, !w.padded_after(end - w.offset())).get(item);
            if (err != simdjson::SUCCESS) break;
            const JsonNode node(item);
            uses_defaults = uses_defaults || !declares_kind(node);
            b.list_bytes_seen = end;
            if (!f(index, node)) return false;
            at = next_token(end, end);
            if (at == npos) break;
            if (byte_at(at) == ']') {
                close = at;
                return true;
            }
            if (byte_at(at) != ',') break;
            at = next_token(at + 1, at + 1);
        }
        parsed = false;
        return false;
    };
    ++b.stats.documents;
    if (load_list_items<JsonNode>(b, top_array, head_kind, head_api_version, DecodeContext{}, 0, walk) || !parsed)
        return false;

    // The rest of the document, then all of it but the items through the parser.
    skeleton.append(w.bytes().substr(close - w.offset()));
    while (w.advance(w.bytes().size())) skeleton.append(w.bytes());
    if (w.read_error() != 0) return false;
    if (skeleton.size() + (close - open - 1) > simdjson::SIMDJSON_MAXSIZE_BYTES) return false;
    simdjson::dom::parser skeleton_parser;
    simdjson::dom::element root;
    if (skeleton_parser.parse(skeleton).get(root) != simdjson::SUCCESS) return false;
    const JsonNode node(root);
    if (top_array) return node.type() == NodeType::List;
    const auto [kind, api_version] = kind_and_api_version(node, DecodeContext{});
    if (node.type() != NodeType::Map || !is_list_kind(kind) || node.get("items").type() != NodeType::List) return false;
    return !uses_defaults ||
           list_item_defaults(false, kind, api_version) == list_item_defaults(false, head_kind, head_api_version);
}

// Parses the text as one document.
std::optional<Error> load_json(std::string_view text, bool padded, std::string_view source, Batch& b) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    // With padding known to follow the text simdjson reads it in place; else it copies.
    const auto err = parser.parse(text.data(), text.size(), !padded).get(root);
    if (err != simdjson::SUCCESS) {
        return Error{fmt::format("{}: invalid JSON: {}", source, simdjson::error_message(err))};
    }
    ++b.stats.documents;
    if (auto msg = load_node(b, JsonNode(root), DecodeContext{}, 0)) return Error{fmt::format("{}: {}", source, *msg)};
    return std::nullopt;
}

// yaml-cpp 0.7's LoadAll never returns on a stray ',' outside a flow collection: the parser
// reports an empty document at the same place over and over (jbeder/yaml-cpp#1040, fixed after
// 0.8). This pass over the parser's events finds such a place before LoadAll is called.
class StuckDocumentFinder : public YAML::EventHandler {
  public:
    void OnDocumentStart(const YAML::Mark& mark) override {
        stuck = documents > 0 && mark.pos <= last.pos;
        last = mark;
        ++documents;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}

    bool stuck = false;
    size_t documents = 0;
    YAML::Mark last;
};

// Throws YAML::ParserException where the parser would never finish.
void check_yaml_terminates(const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    StuckDocumentFinder finder;
    while (parser.HandleNextDocument(finder)) {
        // Every document but the first consumes at least one byte; the count bound is a backstop.
        if (finder.stuck || finder.documents > text.size() + 2) {
            const auto pos = static_cast<size_t>(std::max(finder.last.pos, 0));
            const std::string what = pos < text.size() ? fmt::format("unexpected '{}'", text[pos]) : "unexpected token";
            throw YAML::ParserException(finder.last, what);
        }
    }
}

std::optional<Error> load_yaml(std::string_view text, std::string_view source, Batch& b) {
    std::vector<YAML::Node> docs;
    try {
        const std::string copy(text);
        check_yaml_terminates(copy);
        docs = YAML::LoadAll(copy);
    } catch (const YAML::Exception& e) {
        if (e.mark.is_null()) return Error{fmt::format("{}: invalid YAML: {}", source, one_line(e.msg))};
        return Error{
            fmt::format("{}: line {}, column {}: {}", source, e.mark.line + 1, e.mark.column + 1, one_line(e.msg))};
    }
    size_t budget = kYamlNodesMin + kYamlNodesPerByte * text.size();
    for (size_t i = 0; i < docs.size(); ++i) {
        const YamlNode doc(docs[i]);
        if (doc.type() == NodeType::Missing) continue;  // empty document (`---` with nothing, comments)
        ++b.stats.documents;
        DecodeContext dc;
        dc.node_budget = &budget;
        std::optional<std::string> msg;
        try {
            msg = load_node(b, doc, dc, 0);
        } catch (const YAML::Exception& e) {
            msg = fmt::format("internal YAML error: {}", one_line(e.what()));
        }
        if (msg) {
            if (docs.size() == 1) return Error{fmt::format("{}: {}", source, *msg)};
            return Error{fmt::format("{} (document {}): {}", source, i + 1, *msg)};
        }
    }
    return std::nullopt;
}

template <typename T>
void append(std::vector<T>& to, std::vector<T>& from) {
    if (to.empty()) {
        to.swap(from);
    } else {
        to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
    }
}

using ObjectKey = std::pair<std::string_view, std::string_view>;  // namespace, name

struct ObjectKeyHash {
    size_t operator()(const ObjectKey& k) const noexcept {
        const size_t a = std::hash<std::string_view>{}(k.first);
        return a ^ (std::hash<std::string_view>{}(k.second) + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
    }
};

template <typename T>
void erase_unflagged(std::vector<T>& v, const std::vector<char>& keep) {
    size_t out = 0;
    for (size_t i = 0; i < v.size(); ++i) {
        if (!keep[i]) continue;
        if (out != i) v[out] = std::move(v[i]);
        ++out;
    }
    v.resize(out);
}

// Keeps the last of the objects that share a key. Every key lookup happens before anything
// moves: the keys are views into the objects. Duplicates are rare and lists large: one flat
// open-addressing table of indices finds them, without a heap node per object.
template <typename T, typename KeyFn>
void keep_last(std::vector<T>& v, KeyFn key) {
    if (v.size() < 2) return;
    constexpr size_t kEmpty = SIZE_MAX;
    const size_t mask = std::bit_ceil(v.size() * 2) - 1;
    std::vector<size_t> latest(mask + 1, kEmpty);  // per slot: the last object with its key so far
    std::vector<char> keep;
    const ObjectKeyHash hash;
    for (size_t i = 0; i < v.size(); ++i) {
        const ObjectKey k = key(v[i]);
        for (size_t slot = hash(k) & mask;; slot = (slot + 1) & mask) {
            if (latest[slot] == kEmpty) {
                latest[slot] = i;
                break;
            }
            if (key(v[latest[slot]]) == k) {
                if (keep.empty()) keep.assign(v.size(), 1);
                keep[latest[slot]] = 0;
                latest[slot] = i;
                break;
            }
        }
    }
    if (!keep.empty()) erase_unflagged(v, keep);
}

constexpr std::string_view kSubsetMarker = "/subsets[";

// Slices converted from Endpoints are named "<endpoints>/subsets[<i>]" (k8s_decode.hpp).
std::optional<std::string_view> endpoints_name(const EndpointSliceInfo& s) {
    const size_t at = s.name.find(kSubsetMarker);
    if (at == std::string::npos) return std::nullopt;
    return std::string_view(s.name).substr(0, at);
}

void merge_endpoint_slices(std::vector<EndpointSliceInfo>& slices) {
    if (slices.empty()) return;
    std::unordered_map<ObjectKey, size_t, ObjectKeyHash> last_slice;       // real slices
    std::unordered_map<ObjectKey, size_t, ObjectKeyHash> last_conversion;  // first subset of an Endpoints
    std::unordered_map<ObjectKey, char, ObjectKeyHash> services_with_slices;
    for (size_t i = 0; i < slices.size(); ++i) {
        const auto& s = slices[i];
        if (const auto base = endpoints_name(s)) {
            if (s.name.size() == base->size() + kSubsetMarker.size() + 2 && s.name.ends_with("[0]")) {
                last_conversion.insert_or_assign(ObjectKey{s.ns, *base}, i);
            }
        } else {
            last_slice.insert_or_assign(ObjectKey{s.ns, s.name}, i);
            if (!s.service.empty()) services_with_slices.emplace(ObjectKey{s.ns, s.service}, 1);
        }
    }
    std::vector<char> keep(slices.size());
    bool all = true;
    for (size_t i = 0; i < slices.size(); ++i) {
        const auto& s = slices[i];
        if (const auto base = endpoints_name(s)) {
            // A later copy of the same Endpoints starts again at subsets[0]: drop the earlier run.
            const auto start = last_conversion.find(ObjectKey{s.ns, *base});
            keep[i] = (start == last_conversion.end() || i >= start->second) &&
                      !services_with_slices.contains(ObjectKey{s.ns, s.service});
        } else {
            keep[i] = last_slice.at(ObjectKey{s.ns, s.name}) == i;
        }
        all = all && keep[i];
    }
    if (!all) erase_unflagged(slices, keep);
}

void merge_duplicates(ClusterObjects& o) {
    keep_last(o.namespaces, [](const NamespaceInfo& x) { return ObjectKey{{}, x.name}; });
    keep_last(o.pods, [](const PodInfo& x) { return ObjectKey{x.ns, x.name}; });
    keep_last(o.policies, [](const NetworkPolicy& x) { return ObjectKey{x.ns, x.name}; });
    keep_last(o.services, [](const ServiceInfo& x) { return ObjectKey{x.ns, x.name}; });
    keep_last(o.nodes, [](const NodeInfo& x) { return ObjectKey{{}, x.name}; });
    // The three kinds are distinct objects even under one name: the kind keys them apart.
    keep_last(o.cluster_policies, [](const ClusterNetworkPolicy& x) {
        return ObjectKey{cluster_policy_kind_name(x.kind), x.name};
    });
    keep_last(o.replica_sets, [](const ReplicaSetInfo& x) { return ObjectKey{x.ns, x.name}; });
    merge_endpoint_slices(o.endpoint_slices);
}

void add_stats(LoadStats& to, const LoadStats& from) {
    to.documents += from.documents;
    to.objects += from.objects;
    to.ignored_kinds += from.ignored_kinds;
    for (const auto& [kind, n] : from.ignored_by_kind) to.ignored_by_kind[kind] += n;
}

// `padded`: at least SIMDJSON_PADDING readable bytes follow the text.
void commit(Batch& b, ClusterObjects& out, LoadStats* stats) {
    append(out.namespaces, b.objects.namespaces);
    append(out.pods, b.objects.pods);
    append(out.policies, b.objects.policies);
    append(out.services, b.objects.services);
    append(out.endpoint_slices, b.objects.endpoint_slices);
    append(out.nodes, b.objects.nodes);
    append(out.cluster_policies, b.objects.cluster_policies);
    append(out.replica_sets, b.objects.replica_sets);
    merge_duplicates(out);
    if (stats) add_stats(*stats, b.stats);
}

// `padded`: at least SIMDJSON_PADDING readable bytes follow the text. `by_items`: try a JSON list
// item by item first (not when that already failed on the same bytes).
std::optional<Error> load_text(std::string_view text, bool padded, bool by_items, std::string_view source,
                               ClusterObjects& out, LoadStats* stats) {
    try {
        if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 byte order mark
        const size_t first = text.find_first_not_of(" \t\r\n");
        if (first == std::string_view::npos) return std::nullopt;  // empty: nothing to load
        Batch b;
        const bool json = text[first] == '{' || text[first] == '[';
        if (json && by_items) {
            JsonWindow window(text, padded);
            b.list_bytes = text.size();
            if (load_json_list_by_items(window, 0, b)) {
                commit(b, out, stats);
                return std::nullopt;
            }
            b = Batch{};
        }
        if (auto err = json ? load_json(text, padded, source, b) : load_yaml(text, source, b)) {
            err->message = one_line(err->message);  // the source name and library messages included
            return err;
        }
        commit(b, out, stats);
        return std::nullopt;
    } catch (const std::exception& e) {
        // Allocation failure or a library throwing where it documents none; never escape.
        return Error{fmt::format("{}: {}", source, one_line(e.what()))};
    }
}

// A regular file holding a JSON list, loaded item by item as it is read. False when it is not
// such a list or does not load cleanly this way; the caller then reads it whole from the start.
constexpr size_t kFilePiece = 1 << 20;

bool load_json_file_by_items(int fd, size_t size, ClusterObjects& out, LoadStats* stats) {
    try {
        JsonWindow window(fd, kFilePiece);
        if (!window.advance(0)) return false;
        const std::string_view head = window.bytes();
        const size_t start = head.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // UTF-8 byte order mark
        const size_t first = head.find_first_not_of(" \t\r\n", start);
        if (first == std::string_view::npos || (head[first] != '{' && head[first] != '[')) return false;
        Batch b;
        b.list_bytes = size;
        if (!load_json_list_by_items(window, start, b)) return false;
        commit(b, out, stats);
        return true;
    } catch (const std::exception&) {
        return false;  // read whole, the load reports what is wrong
    }
}

// A file's bytes followed by SIMDJSON_PADDING spare bytes, so simdjson parses them in place.
class FileBuffer {
  public:
    FileBuffer() = default;
    FileBuffer(const FileBuffer&) = delete;
    FileBuffer& operator=(const FileBuffer&) = delete;
    ~FileBuffer() { release(); }

    // Reads all of fd. Returns 0 or an errno.
    int read_all(int fd) {
        struct stat st {};
        size_t want = 1 << 16;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) want = static_cast<size_t>(st.st_size) + 1;
        len_ = 0;
        if (!reserve(want + simdjson::SIMDJSON_PADDING)) return ENOMEM;
        while (true) {
            if (cap_ - len_ < simdjson::SIMDJSON_PADDING + 1 && !reserve(cap_ * 2)) return ENOMEM;
            const ssize_t n = ::read(fd, data_ + len_, cap_ - len_ - simdjson::SIMDJSON_PADDING);
            if (n == 0) return 0;
            if (n < 0) {
                if (errno == EINTR) continue;
                return errno;
            }
            len_ += static_cast<size_t>(n);
        }
    }

    std::string_view text() const { return {data_, len_}; }

  private:
    static constexpr size_t kHugeThreshold = 8 << 20;

    bool reserve(size_t cap) {
        if (cap <= cap_) return true;
        char* p = nullptr;
        if (cap >= kHugeThreshold) {
            // Large states are read once and parsed at memory speed; on virtual machines first-touch
            // page faults can cost more than the parse. Transparent huge pages cut them 512-fold
            // where THP is in madvise mode; elsewhere this is a plain allocation.
            void* m = mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) return false;
            madvise(m, cap, MADV_HUGEPAGE);
            p = static_cast<char*>(m);
        } else {
            p = static_cast<char*>(std::malloc(cap));
            if (!p) return false;
        }
        if (len_) std::memcpy(p, data_, len_);
        release();
        data_ = p;
        cap_ = cap;
        mapped_ = cap >= kHugeThreshold;
        return true;
    }

    void release() {
        if (!data_) return;
        if (mapped_) {
            munmap(data_, cap_);
        } else {
            std::free(data_);
        }
        data_ = nullptr;
        cap_ = 0;
    }

    char* data_ = nullptr;
    size_t len_ = 0;
    size_t cap_ = 0;
    bool mapped_ = false;
};

}  // namespace

std::optional<Error> load_state_text(std::string_view text, std::string_view source, ClusterObjects& out,
                                     LoadStats* stats) {
    return load_text(text, false, true, source, out, stats);
}

Result<ClusterObjects> load_state_files(const std::vector<std::string>& paths, LoadStats* stats,
                                        const LoadOptions& options) {
    ClusterObjects out;
    for (const std::string& path : paths) {
        const bool is_stdin = path == "-";
        const std::string source = is_stdin ? "stdin" : path;
        if (is_stdin && !options.allow_stdin) return Error{"stdin: reading state from standard input is not allowed"};
        const int fd = is_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return Error{fmt::format("{}: cannot read: {}", source, std::strerror(errno))};
        struct stat st {};
        const bool regular = !is_stdin && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
        if (regular) {
            if (load_json_file_by_items(fd, static_cast<size_t>(st.st_size), out, stats)) {
                ::close(fd);
                continue;
            }
            if (::lseek(fd, 0, SEEK_SET) != 0) {
                const int e = errno;
                ::close(fd);
                return Error{fmt::format("{}: cannot read: {}", source, std::strerror(e))};
            }
        }
        FileBuffer buf;
        const int err = buf.read_all(fd);
        if (!is_stdin) ::close(fd);
        if (err != 0) return Error{fmt::format("{}: cannot read: {}", source, std::strerror(err))};
        if (auto e = load_text(buf.text(), true, !regular, source, out, stats)) return *e;
    }
    return out;
}

}  // namespace npt
