#include "cli/invocation.hpp"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <ostream>

#include "k8s/kubeconfig.hpp"

namespace npt::cli {

namespace {

constexpr int kDirectiveDefault = 0;  // cobra's ShellCompDirectiveDefault: the shell may offer file names
constexpr int kDirectiveNoFiles = 4;  // ShellCompDirectiveNoFileComp

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

bool takes_value(const CLI::Option* opt) {
    return opt != nullptr && opt->get_type_size_max() > 0;
}

bool hidden(const CLI::Option* opt) {
    return opt->get_group().empty();
}

// The subcommand named `word`, when there is one (hidden ones included: they are still commands).
CLI::App* subcommand_named(const CLI::App& app, const std::string& word) {
    auto subs = const_cast<CLI::App&>(app).get_subcommands([&](CLI::App* s) { return s->check_name(word); });
    return subs.empty() ? nullptr : subs.front();
}

// The option a word names: "--state", "--state=x.json", "-n", "-nshop" (CLI11 reads an attached short value).
CLI::Option* option_named(const CLI::App& app, std::string_view word, bool* value_attached) {
    *value_attached = false;
    std::string name;
    if (starts_with(word, "--")) {
        const auto eq = word.find('=');
        *value_attached = eq != std::string_view::npos;
        name = std::string(word.substr(0, eq));
    } else if (word.size() >= 2 && word[0] == '-') {
        *value_attached = word.size() > 2;
        name = std::string(word.substr(0, 2));
    } else {
        return nullptr;
    }
    return const_cast<CLI::App&>(app).get_option_no_throw(name);
}

// Index of the subcommand's name in args, or args.size(): the first word that names a subcommand and is not the
// value of the option before it.
size_t subcommand_index(const CLI::App& app, const std::vector<std::string>& args) {
    bool pending_value = false;
    for (size_t i = 0; i < args.size(); ++i) {
        if (pending_value) {
            pending_value = false;
            continue;
        }
        if (args[i] == "--") return args.size();
        bool attached = false;
        if (const auto* opt = option_named(app, args[i], &attached)) {
            pending_value = takes_value(opt) && !attached;
            continue;
        }
        if (args[i].empty() || args[i][0] != '-') {
            if (subcommand_named(app, args[i]) != nullptr) return i;
        }
    }
    return args.size();
}

// A kubectl flag that the subcommand should read: 0 when the word is none, 1 when it holds its value, 2 when the
// value is the next word.
int kubectl_flag_words(std::string_view word) {
    for (std::string_view name : {"--kubeconfig", "--context", "--namespace"}) {
        if (word == name) return 2;
        if (starts_with(word, name) && word.size() > name.size() && word[name.size()] == '=') return 1;
    }
    if (word == "-n") return 2;
    if (starts_with(word, "-n") && word.size() > 2) return 1;  // -nshop, -n=shop
    return 0;
}

std::string first_line(const std::string& text) {
    std::string line = text.substr(0, text.find('\n'));
    for (auto& c : line)
        if (c == '\t') c = ' ';
    return line;
}

// The values an option accepts when CLI11 checks them against a set: its validator describes it as "{a,b,c}".
std::vector<std::string> member_values(CLI::Option* opt) {
    std::vector<std::string> out;
    try {
        const std::string desc = opt->get_validator()->get_description();
        if (desc.size() < 2 || desc.front() != '{' || desc.back() != '}') return out;
        size_t start = 1;
        while (start < desc.size() - 1) {
            auto comma = desc.find(',', start);
            if (comma == std::string::npos || comma > desc.size() - 1) comma = desc.size() - 1;
            out.push_back(desc.substr(start, comma - start));
            start = comma + 1;
        }
    } catch (const CLI::OptionNotFound&) {
    }
    return out;
}

// The contexts of the kubeconfig kubectl would read: --kubeconfig when typed, else $KUBECONFIG, else ~/.kube/config.
std::vector<std::string> kubeconfig_contexts(const std::string& typed) {
    std::vector<std::string> paths;
    if (!typed.empty()) {
        paths.push_back(typed);
    } else if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
        paths = k8s::split_kubeconfig_env(env);
    } else if (const char* home = std::getenv("HOME"); home && *home) {
        paths.push_back(std::string(home) + "/.kube/config");
    }
    std::vector<std::string> out;
    auto config = k8s::load_kubeconfig_files(paths, true);
    if (!config) return out;
    for (const auto& [name, ctx] : config->contexts) out.push_back(name);
    return out;
}

void write_value_completions(CLI::Option* opt, const std::string& prefix, const std::string& current,
                             const std::string& typed_kubeconfig, std::ostream& out) {
    const std::string type = opt->get_type_name();
    std::vector<std::string> values;
    if (opt->check_lname("context")) {
        values = kubeconfig_contexts(typed_kubeconfig);
    } else {
        values = member_values(opt);
    }
    for (const auto& v : values)
        if (starts_with(v, current)) out << prefix << v << "\n";
    const bool files =
        values.empty() && (type.find("FILE") != std::string::npos || type.find("PATH") != std::string::npos ||
                           type.find("DIR") != std::string::npos);
    out << ":" << (files ? kDirectiveDefault : kDirectiveNoFiles) << "\n";
}

}  // namespace

Invocation invocation_from(std::string_view argv0) {
    const auto slash = argv0.rfind('/');
    const auto base = slash == std::string_view::npos ? argv0 : argv0.substr(slash + 1);
    if (base == "kubectl-netpol_trace") return Invocation::KubectlPlugin;
    if (base == "kubectl_complete-netpol_trace") return Invocation::KubectlComplete;
    return Invocation::Tool;
}

std::string command_name(Invocation how) {
    return how == Invocation::Tool ? "netpol-trace" : "kubectl netpol-trace";
}

std::vector<std::string> hoist_kubectl_flags(const CLI::App& app, std::vector<std::string> args) {
    const size_t sub = subcommand_index(app, args);
    if (sub == args.size()) return args;
    std::vector<std::string> before, hoisted;
    for (size_t i = 0; i < sub; ++i) {
        const int words = kubectl_flag_words(args[i]);
        if (words == 0) {
            before.push_back(args[i]);
            bool attached = false;
            const auto* opt = option_named(app, args[i], &attached);
            if (takes_value(opt) && !attached && i + 1 < sub) before.push_back(args[++i]);
            continue;
        }
        hoisted.push_back(args[i]);
        if (words == 2 && i + 1 < sub) hoisted.push_back(args[++i]);
    }
    std::vector<std::string> out = std::move(before);
    out.push_back(args[sub]);
    out.insert(out.end(), hoisted.begin(), hoisted.end());
    out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(sub) + 1, args.end());
    return out;
}

void write_completions(CLI::App& app, const std::vector<std::string>& words, std::ostream& out) {
    const std::string current = words.empty() ? std::string() : words.back();
    CLI::App* scope = &app;
    CLI::Option* pending = nullptr;
    std::string typed_kubeconfig;
    for (size_t i = 0; i + 1 < words.size(); ++i) {
        const std::string& w = words[i];
        if (pending) {
            if (pending->check_lname("kubeconfig")) typed_kubeconfig = w;
            pending = nullptr;
            continue;
        }
        bool attached = false;
        if (auto* opt = option_named(*scope, w, &attached)) {
            if (attached && opt->check_lname("kubeconfig")) typed_kubeconfig = w.substr(w.find('=') + 1);
            if (takes_value(opt) && !attached) pending = opt;
            continue;
        }
        // A kubectl flag before the subcommand belongs to it (hoist_kubectl_flags).
        if (scope == &app && kubectl_flag_words(w) == 2) {
            if (w == "--kubeconfig" && i + 2 < words.size()) typed_kubeconfig = words[i + 1];
            ++i;
            continue;
        }
        if (scope == &app && !w.empty() && w[0] != '-') {
            if (auto* sub = subcommand_named(app, w)) scope = sub;
        }
    }
    if (pending) return write_value_completions(pending, "", current, typed_kubeconfig, out);
    if (starts_with(current, "--") && current.find('=') != std::string::npos) {
        bool attached = false;
        if (auto* opt = option_named(*scope, current, &attached); takes_value(opt)) {
            const auto eq = current.find('=');
            return write_value_completions(opt, current.substr(0, eq + 1), current.substr(eq + 1), typed_kubeconfig,
                                           out);
        }
        out << ":" << kDirectiveNoFiles << "\n";
        return;
    }
    if (starts_with(current, "-")) {
        for (const auto* opt : scope->get_options([](const CLI::Option* o) { return !hidden(o); })) {
            const auto describe = first_line(opt->get_description());
            for (const auto& l : opt->get_lnames())
                if (starts_with("--" + l, current)) out << "--" << l << "\t" << describe << "\n";
            for (const auto& s : opt->get_snames())
                if (starts_with("-" + s, current)) out << "-" << s << "\t" << describe << "\n";
        }
        out << ":" << kDirectiveNoFiles << "\n";
        return;
    }
    if (scope == &app) {
        for (const auto* sub : app.get_subcommands([](const CLI::App* s) { return !s->get_group().empty(); }))
            if (starts_with(sub->get_name(), current))
                out << sub->get_name() << "\t" << first_line(sub->get_description()) << "\n";
    }
    out << ":" << kDirectiveNoFiles << "\n";
}

}  // namespace npt::cli
