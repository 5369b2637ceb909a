// How the binary was invoked. One binary answers to three names (cmake --install links the other two to it):
//   netpol-trace                   the tool itself;
//   kubectl-netpol_trace           the kubectl plugin: `kubectl netpol-trace ...` runs it with the arguments after
//                                  the plugin's name (kubectl passes none of its own flags to a plugin);
//   kubectl_complete-netpol_trace  the plugin's shell completion: kubectl 1.26+ runs it with the words typed after
//                                  `kubectl netpol-trace`, the last one the word being completed.
// `netpol-trace __complete WORDS...` is the same completion, for the tool's own bash completion script.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace npt::cli {

enum class Invocation { Tool, KubectlPlugin, KubectlComplete };

// From argv[0]'s base name.
Invocation invocation_from(std::string_view argv0);

// The command as the user typed it, for usage lines and messages: "netpol-trace" or "kubectl netpol-trace".
std::string command_name(Invocation how);

// kubectl users put the namespace, context and kubeconfig before the subcommand (`kubectl netpol-trace --context
// prod explain ...`), where only the live tail would read them: moves --kubeconfig, --context and -n/--namespace
// (each with its value, in any of kubectl's spellings) from before the subcommand to just after its name. Anything
// else stays where it was.
std::vector<std::string> hoist_kubectl_flags(const CLI::App& app, std::vector<std::string> args);

// Completion of the last word of `words` (the words after the command name; the last may be empty), in the
// protocol kubectl's plugin completion and cobra's __complete use: one candidate a line ("CANDIDATE\tDESCRIPTION"),
// then ":DIRECTIVE" (0: the shell may complete file names; 4: no file names).
void write_completions(CLI::App& app, const std::vector<std::string>& words, std::ostream& out);

}  // namespace npt::cli
