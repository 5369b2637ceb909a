// The JSON contract of `explain -o json` (and the base of the tail's JSON lines): field names and
// shapes are stable; scripts parse them.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "policy/explanation.hpp"

namespace npt {

using Json = nlohmann::ordered_json;

Json explanation_json(const Explanation& e);
const char* exemption_name(Exemption e);

// explanation_json(e) as one compact JSON line, appended to out without building the document: what a batch
// of explanations pays per result.
void append_explanation_json_line(std::string& out, const Explanation& e);

// One compact JSON document and a newline.
void write_json_line(std::ostream& out, const Json& j);

}  // namespace npt
