#include "k8s/list_resource.hpp"

#include <fmt/format.h>

namespace npt::k8s {

namespace {

constexpr int kMaxRestarts = 3;

}  // namespace

ListOutcome list_resource(ApiClient& client, Resource r, uint32_t page_size, ApiDecoder& decoder,
                          const Cancellation* cancel) {
    ListOutcome out;
    for (int restart = 0;; ++restart) {
        out.items.clear();
        out.decode_errors.clear();
        out.pages = 0;
        std::string token;
        std::string first_rv;
        bool expired = false;
        for (;;) {
            HttpResponse resp = client.get(list_path(r, page_size, token, out.alt), cancel);
            if (resp.status == 404 && token.empty() && !out.alt && !resource_info(r).alt_collection.empty()) {
                out.alt = true;  // this API version is not served: the other one
                continue;
            }
            if (resp.status == 410 && !token.empty() && restart < kMaxRestarts) {
                expired = true;  // the snapshot behind the continue token was compacted: start over
                break;
            }
            if (!resp.ok()) {
                out.failure = std::move(resp);
                out.error = client.error_for(out.failure, list_action(r), rbac_remedy(r));
                return out;
            }
            auto page = decoder.decode_list(r, resp.body);
            if (!page) {
                out.failure.error = page.error().message;
                out.error = Error{fmt::format("{}: {}", client.config().describe(), page.error().message)};
                return out;
            }
            ++out.pages;
            if (first_rv.empty()) first_rv = page->resource_version;
            for (auto& item : page->items) out.items.push_back(std::move(item));
            for (auto& e : page->errors) out.decode_errors.push_back(std::move(e));
            token = std::move(page->continue_token);
            if (token.empty()) break;
        }
        if (expired) continue;
        // Every page of one list carries the resourceVersion of the snapshot it reads.
        out.resource_version = std::move(first_rv);
        out.ok = true;
        return out;
    }
}

}  // namespace npt::k8s
