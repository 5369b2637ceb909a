#include "state/state_loader.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <sstream>
#include <unordered_map>
#include <utility>

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
};

template <typename... F>
struct Overloaded : F... {
    using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

void add_object(Batch& b, DecodedObject&& obj) {
    ClusterObjects& o = b.objects;
    std::visit(
        Overloaded{
            [&](IgnoredObject& x) {
                ++b.stats.ignored_kinds;
                ++b.stats.ignored_by_kind[x.api_version.empty() ? x.kind : x.api_version + " " + x.kind];
            },
            [&](NamespaceInfo& x) { o.namespaces.push_back(std::move(x)); },
            [&](PodInfo& x) { o.pods.push_back(std::move(x)); },
            [&](NetworkPolicy& x) { o.policies.push_back(std::move(x)); },
            [&](ServiceInfo& x) { o.services.push_back(std::move(x)); },
            [&](EndpointSliceInfo& x) { o.endpoint_slices.push_back(std::move(x)); },
            [&](EndpointsInfo& x) {
                for (auto& s : x.slices) o.endpoint_slices.push_back(std::move(s));
            },
            [&](NodeInfo& x) { o.nodes.push_back(std::move(x)); },
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

// One object, a list of objects, or (top level only) an array of objects. Returns the error
// message without the source prefix.
template <typename A>
std::optional<std::string> load_node(Batch& b, const A& node, const DecodeContext& dc, int depth) {
    std::string_view kind = dc.default_kind;
    std::string_view api_version = dc.default_api_version;
    if (node.type() == NodeType::Map) {
        if (const A k = node.get("kind"); k.type() == NodeType::String) kind = k.string();
        if (const A v = node.get("apiVersion"); v.type() == NodeType::String) api_version = v.string();
    }
    const bool top_array = depth == 0 && node.type() == NodeType::List;
    if (!top_array && !(node.type() == NodeType::Map && is_list_kind(kind))) {
        auto decoded = decode_object(node.raw(), dc);
        if (!decoded) return decoded.error().message;
        add_object(b, std::move(*decoded));
        return std::nullopt;
    }

    const std::string prefix = dc.where.empty() ? std::string() : std::string(dc.where) + ".";
    if (depth >= kMaxListDepth) return fmt::format("{}items: lists nested too deeply", prefix);
    const A items = top_array ? node : node.get("items");
    if (items.type() != NodeType::List && items.type() != NodeType::Missing) {
        return fmt::format("{}items: expected a list, got {}", prefix,
                           detail::node_type_phrase(items.type()));
    }
    DecodeContext item_dc;
    item_dc.node_budget = dc.node_budget;
    std::string item_kind;
    if (!top_array && kind != "List") item_kind = kind.substr(0, kind.size() - 4);  // PodList -> Pod
    item_dc.default_kind = item_kind;
    item_dc.default_api_version = top_array ? std::string_view() : api_version;
    std::optional<std::string> error;
    std::string where;
    items.for_each_item([&](size_t i, const A& item) {
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

std::optional<Error> load_json(std::string_view text, bool padded, std::string_view source, Batch& b) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    // With padding known to follow the text simdjson reads it in place; else it copies.
    const auto err = parser.parse(text.data(), text.size(), !padded).get(root);
    if (err != simdjson::SUCCESS) {
        return Error{fmt::format("{}: invalid JSON: {}", source, simdjson::error_message(err))};
    }
    ++b.stats.documents;
    if (auto msg = load_node(b, JsonNode(root), DecodeContext{}, 0))
        return Error{fmt::format("{}: {}", source, *msg)};
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
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
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
            const std::string what =
                pos < text.size() ? fmt::format("unexpected '{}'", text[pos]) : "unexpected token";
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
        return Error{fmt::format("{}: line {}, column {}: {}", source, e.mark.line + 1, e.mark.column + 1,
                                 one_line(e.msg))};
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
// moves: the keys are views into the objects.
template <typename T, typename KeyFn>
void keep_last(std::vector<T>& v, KeyFn key) {
    if (v.size() < 2) return;
    std::unordered_map<ObjectKey, size_t, ObjectKeyHash> last;
    last.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) last.insert_or_assign(key(v[i]), i);
    if (last.size() == v.size()) return;
    std::vector<char> keep(v.size());
    for (size_t i = 0; i < v.size(); ++i) keep[i] = last.at(key(v[i])) == i;
    erase_unflagged(v, keep);
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
    merge_endpoint_slices(o.endpoint_slices);
}

void add_stats(LoadStats& to, const LoadStats& from) {
    to.documents += from.documents;
    to.objects += from.objects;
    to.ignored_kinds += from.ignored_kinds;
    for (const auto& [kind, n] : from.ignored_by_kind) to.ignored_by_kind[kind] += n;
}

// `padded`: at least SIMDJSON_PADDING readable bytes follow the text.
std::optional<Error> load_text(std::string_view text, bool padded, std::string_view source,
                               ClusterObjects& out, LoadStats* stats) {
    try {
        if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 byte order mark
        const size_t first = text.find_first_not_of(" \t\r\n");
        if (first == std::string_view::npos) return std::nullopt;  // empty: nothing to load
        Batch b;
        const bool json = text[first] == '{' || text[first] == '[';
        if (auto err = json ? load_json(text, padded, source, b) : load_yaml(text, source, b)) {
            err->message = one_line(err->message);  // the source name and library messages included
            return err;
        }
        append(out.namespaces, b.objects.namespaces);
        append(out.pods, b.objects.pods);
        append(out.policies, b.objects.policies);
        append(out.services, b.objects.services);
        append(out.endpoint_slices, b.objects.endpoint_slices);
        append(out.nodes, b.objects.nodes);
        merge_duplicates(out);
        if (stats) add_stats(*stats, b.stats);
        return std::nullopt;
    } catch (const std::exception& e) {
        // Allocation failure or a library throwing where it documents none; never escape.
        return Error{fmt::format("{}: {}", source, one_line(e.what()))};
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
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
            want = static_cast<size_t>(st.st_size) + 1;
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
    return load_text(text, false, source, out, stats);
}

Result<ClusterObjects> load_state_files(const std::vector<std::string>& paths, LoadStats* stats,
                                        const LoadOptions& options) {
    ClusterObjects out;
    for (const std::string& path : paths) {
        const bool is_stdin = path == "-";
        const std::string source = is_stdin ? "stdin" : path;
        if (is_stdin && !options.allow_stdin)
            return Error{"stdin: reading state from standard input is not allowed"};
        const int fd = is_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return Error{fmt::format("{}: cannot read: {}", source, std::strerror(errno))};
        FileBuffer buf;
        const int err = buf.read_all(fd);
        if (!is_stdin) ::close(fd);
        if (err != 0) return Error{fmt::format("{}: cannot read: {}", source, std::strerror(err))};
        if (auto e = load_text(buf.text(), true, source, out, stats)) return *e;
    }
    return out;
}

}  // namespace npt
