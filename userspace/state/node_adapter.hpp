// One read-only view over a parsed JSON value (simdjson DOM) or YAML node (yaml-cpp), so that the
// typed decoders in k8s_decode.cpp are written once. Internal to the state room.
//
// Null and absent are one thing (NodeType::Missing), as Go's JSON decoding treats them for the
// optional fields read here. YAML plain scalars are resolved the way kubectl's YAML-to-JSON step
// (go-yaml v2, YAML 1.1) resolves them: `80` is an integer, `yes`/`on`/`true` are booleans, `"80"`
// is a string. So a field the API declares as a string rejects `version: 1`, as the API server does.
#pragma once

#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <concepts>
#include <cstdint>
#include <optional>
#include <string_view>

namespace npt::detail {

enum class NodeType : uint8_t { Missing, Bool, Int, Float, String, Map, List };

const char* node_type_phrase(NodeType t);  // "a string", "a map", ... for error messages

// What a decoder may ask of a node. Callbacks return false to stop iterating; for_each_* returns
// false when a callback stopped it.
struct FieldVisitorArchetype {
    template <typename N>
    bool operator()(std::string_view, const N&) const {
        return true;
    }
};
struct ItemVisitorArchetype {
    template <typename N>
    bool operator()(size_t, const N&) const {
        return true;
    }
};

template <typename N>
concept TreeNode = std::copyable<N> && requires(const N& n, std::string_view key) {
    { n.type() } -> std::same_as<NodeType>;
    { n.get(key) } -> std::same_as<N>;
    { n.string() } -> std::same_as<std::string_view>;         // meaningful when type() is String
    { n.integer() } -> std::same_as<std::optional<int64_t>>;  // set when type() is Int
    { n.boolean() } -> std::same_as<bool>;                    // meaningful when type() is Bool
    { n.for_each_field(FieldVisitorArchetype{}) } -> std::same_as<bool>;
    { n.field_count() } -> std::same_as<size_t>;  // of a map (0 for anything else), to reserve for them
    { n.for_each_item(ItemVisitorArchetype{}) } -> std::same_as<bool>;
};

class JsonNode {
  public:
    JsonNode() = default;
    explicit JsonNode(simdjson::dom::element e) : el_(e), present_(!e.is_null()) {}

    simdjson::dom::element raw() const { return el_; }

    NodeType type() const {
        if (!present_) return NodeType::Missing;
        switch (el_.type()) {
            case simdjson::dom::element_type::ARRAY:
                return NodeType::List;
            case simdjson::dom::element_type::OBJECT:
                return NodeType::Map;
            case simdjson::dom::element_type::INT64:
                return NodeType::Int;
            case simdjson::dom::element_type::UINT64:  // only above INT64_MAX: out of every range read here
            case simdjson::dom::element_type::DOUBLE:
                return NodeType::Float;
            case simdjson::dom::element_type::STRING:
                return NodeType::String;
            case simdjson::dom::element_type::BOOL:
                return NodeType::Bool;
            case simdjson::dom::element_type::NULL_VALUE:
                return NodeType::Missing;
        }
        return NodeType::Missing;
    }

    JsonNode get(std::string_view key) const {
        simdjson::dom::object obj;
        if (!present_ || el_.get_object().get(obj) != simdjson::SUCCESS) return {};
        simdjson::dom::element value;
        if (obj.at_key(key).get(value) != simdjson::SUCCESS) return {};
        return JsonNode(value);
    }

    std::string_view string() const {
        std::string_view s;
        if (!present_ || el_.get_string().get(s) != simdjson::SUCCESS) return {};
        return s;
    }

    std::optional<int64_t> integer() const {
        int64_t v = 0;
        if (!present_ || el_.get_int64().get(v) != simdjson::SUCCESS) return std::nullopt;
        return v;
    }

    bool boolean() const {
        bool v = false;
        if (!present_ || el_.get_bool().get(v) != simdjson::SUCCESS) return false;
        return v;
    }

    size_t field_count() const {
        simdjson::dom::object obj;
        if (!present_ || el_.get_object().get(obj) != simdjson::SUCCESS) return 0;
        return obj.size();
    }

    template <typename F>
    bool for_each_field(F&& f) const {
        simdjson::dom::object obj;
        if (!present_ || el_.get_object().get(obj) != simdjson::SUCCESS) return true;
        for (const auto field : obj) {
            if (!f(std::string_view(field.key), JsonNode(field.value))) return false;
        }
        return true;
    }

    template <typename F>
    bool for_each_item(F&& f) const {
        simdjson::dom::array arr;
        if (!present_ || el_.get_array().get(arr) != simdjson::SUCCESS) return true;
        size_t i = 0;
        for (const simdjson::dom::element item : arr) {
            if (!f(i++, JsonNode(item))) return false;
        }
        return true;
    }

  private:
    simdjson::dom::element el_;
    bool present_ = false;
};

// A YAML scalar's resolved type and, for integers and booleans, its value.
struct YamlScalar {
    NodeType type = NodeType::String;
    int64_t int_value = 0;
    bool bool_value = false;
};
YamlScalar resolve_yaml_scalar(const YAML::Node& n);

class YamlNode {
  public:
    YamlNode() = default;
    explicit YamlNode(const YAML::Node& n) : n_(n) {
        switch (n_.Type()) {
            case YAML::NodeType::Map:
                type_ = NodeType::Map;
                break;
            case YAML::NodeType::Sequence:
                type_ = NodeType::List;
                break;
            case YAML::NodeType::Scalar: {
                const YamlScalar s = resolve_yaml_scalar(n_);
                type_ = s.type;
                int_value_ = s.int_value;
                bool_value_ = s.bool_value;
                break;
            }
            case YAML::NodeType::Null:
            case YAML::NodeType::Undefined:
                type_ = NodeType::Missing;
                break;
        }
    }

    const YAML::Node& raw() const { return n_; }
    NodeType type() const { return type_; }

    YamlNode get(std::string_view key) const {
        if (type_ != NodeType::Map) return {};
        for (auto it = n_.begin(); it != n_.end(); ++it) {
            if (it->first.IsScalar() && it->first.Scalar() == key) return YamlNode(it->second);
        }
        return {};
    }

    std::string_view string() const { return type_ == NodeType::String ? std::string_view(n_.Scalar()) : ""; }
    std::optional<int64_t> integer() const {
        return type_ == NodeType::Int ? std::optional<int64_t>(int_value_) : std::nullopt;
    }
    bool boolean() const { return type_ == NodeType::Bool && bool_value_; }

    size_t field_count() const { return type_ == NodeType::Map ? n_.size() : 0; }

    template <typename F>
    bool for_each_field(F&& f) const {
        if (type_ != NodeType::Map) return true;
        for (auto it = n_.begin(); it != n_.end(); ++it) {
            // Complex (non-scalar) keys cannot name a field of a Kubernetes object.
            const std::string_view key = it->first.IsScalar() ? std::string_view(it->first.Scalar()) : "";
            if (!f(key, YamlNode(it->second))) return false;
        }
        return true;
    }

    template <typename F>
    bool for_each_item(F&& f) const {
        if (type_ != NodeType::List) return true;
        size_t i = 0;
        for (auto it = n_.begin(); it != n_.end(); ++it) {
            if (!f(i++, YamlNode(*it))) return false;
        }
        return true;
    }

  private:
    YAML::Node n_;
    NodeType type_ = NodeType::Missing;
    int64_t int_value_ = 0;
    bool bool_value_ = false;
};

static_assert(TreeNode<JsonNode>);
static_assert(TreeNode<YamlNode>);

}  // namespace npt::detail
