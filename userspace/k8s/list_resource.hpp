// One complete, consistent list of a resource: `limit`/`continue` pages, restarted from the first page when
// the server expired the continue token (410 Gone) in between.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "k8s/api_client.hpp"
#include "k8s/api_decode.hpp"
#include "k8s/api_resources.hpp"

namespace npt::k8s {

struct ListOutcome {
    bool ok = false;
    std::vector<ApiObject> items;
    std::string resource_version;            // of the list: where a watch starts
    std::vector<std::string> decode_errors;  // items skipped
    size_t pages = 0;
    bool alt = false;  // listed from the resource's alternative API version (watch it there too)
    // When !ok:
    HttpResponse failure;  // the response that failed (status, retryable, cancelled)
    Error error;           // the one-line error naming context and server
};

ListOutcome list_resource(ApiClient& client, Resource r, uint32_t page_size, ApiDecoder& decoder,
                          const Cancellation* cancel = nullptr);

}  // namespace npt::k8s
