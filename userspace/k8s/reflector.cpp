#include "k8s/reflector.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "k8s/list_resource.hpp"

namespace npt::k8s {

Reflector::Reflector(Resource r, ApiClient& client, ObjectStore& store, const ReflectorOptions& options,
                     const Cancellation& cancel, std::function<void()> on_change, std::function<void()> on_status)
    : resource_(r),
      client_(client),
      store_(store),
      options_(options),
      cancel_(cancel),
      on_change_(std::move(on_change)),
      on_status_(std::move(on_status)),
      delay_(options.backoff_initial),
      rng_(std::random_device{}()) {}

void Reflector::log(const std::string& msg) const {
    if (options_.log) options_.log(msg);
}

void Reflector::touch() {
    status_.last_activity_ns.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                                   std::memory_order_relaxed);
}

void Reflector::fail(const Error& e, bool permanent) {
    {
        std::lock_guard lock(status_.mu);
        status_.last_error = e.message;
        status_.last_error_permanent = permanent;
    }
    if (on_status_) on_status_();
}

void Reflector::succeed() {
    {
        std::lock_guard lock(status_.mu);
        status_.last_error.clear();
        status_.last_error_permanent = false;
    }
    delay_ = options_.backoff_initial;
}

void Reflector::backoff() {
    // Exponential with jitter: a fleet of agents that lost the API server together does not return together.
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    const auto sleep =
        std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(delay_.count()) * jitter(rng_)));
    delay_ = std::min(delay_ * 2, options_.backoff_max);
    cancel_.sleep_for(sleep);
}

void Reflector::run() {
    bool need_list = true;
    while (!cancel_.cancelled()) {
        if (need_list) {
            if (!list()) {
                if (cancel_.cancelled()) break;
                backoff();
                continue;
            }
            need_list = false;
        }
        switch (watch()) {
            case WatchEnd::Clean:
                break;  // the server's timeoutSeconds: watch again at once
            case WatchEnd::Gone:
                need_list = true;
                break;
            case WatchEnd::Failed:
                status_.reconnects.fetch_add(1, std::memory_order_relaxed);
                backoff();
                break;
            case WatchEnd::Cancelled:
                return;
        }
    }
}

bool Reflector::list() {
    ListOutcome out = list_resource(client_, resource_, options_.page_size, decoder_, &cancel_);
    // The parser grew to the largest page; watch events are small: give that memory back.
    decoder_.release_buffers();
    if (!out.ok) {
        if (out.failure.cancelled) return false;
        // A cluster older than 1.21 has no discovery.k8s.io/v1: explain Services from their selectors. A
        // cluster without the policy API's CRDs has none of their objects. Both are asked again now and then.
        const bool optional = resource_info(resource_).optional;
        if ((resource_ == Resource::EndpointSlices || optional) && out.failure.status == 404) {
            const bool was_synced = status_.synced.exchange(true);
            if (!was_synced || store_.size(resource_) > 0) {
                if (!was_synced && !optional) log(out.error.message + " (continuing without EndpointSlices)");
                store_.replace(resource_, {}, ObjectStore::Clock::now());  // a CRD deleted: its objects went too
                if (on_change_) on_change_();
            }
            if (!optional) {
                fail(out.error, false);
            } else {
                touch();                       // known now: there are none
                if (on_status_) on_status_();  // synced: the informer may be waiting for this resource
            }
            delay_ = options_.backoff_max;
            return false;
        }
        const long s = out.failure.status;
        const bool permanent = (s == 0 && !out.failure.retryable) || s == 401 || s == 403 || s == 404;
        fail(out.error, permanent);
        log(out.error.message);
        return false;
    }
    for (const auto& e : out.decode_errors) {
        status_.decode_errors.fetch_add(1, std::memory_order_relaxed);
        log(fmt::format("{}: skipped an object that does not decode: {}", client_.config().describe(), e));
    }
    const uint64_t n = status_.lists.fetch_add(1, std::memory_order_relaxed);
    if (n > 0) status_.relists.fetch_add(1, std::memory_order_relaxed);
    store_.replace(resource_, std::move(out.items), ObjectStore::Clock::now());
    resource_version_ = out.resource_version;
    alt_ = out.alt;
    {
        std::lock_guard lock(status_.mu);
        status_.resource_version = resource_version_;
    }
    touch();
    succeed();
    status_.synced.store(true, std::memory_order_release);
    if (on_change_) on_change_();
    if (on_status_) on_status_();
    return true;
}

bool Reflector::handle_watch_line(std::string_view line) {
    auto ev = decoder_.decode_watch_event(resource_, line);
    if (!ev) {
        status_.decode_errors.fetch_add(1, std::memory_order_relaxed);
        log(fmt::format("{}: skipped a watch event: {}", client_.config().describe(), ev.error().message));
        return true;
    }
    touch();
    switch (ev->type) {
        case WatchEventType::Added:
        case WatchEventType::Modified:
            status_.events.fetch_add(1, std::memory_order_relaxed);
            if (ev->object) {
                store_.upsert(std::move(*ev->object));
                if (on_change_) on_change_();
            } else {
                status_.decode_errors.fetch_add(1, std::memory_order_relaxed);
                log(fmt::format("{}: skipped a watch event that does not decode: {}", client_.config().describe(),
                                ev->decode_error));
            }
            break;
        case WatchEventType::Deleted:
            status_.events.fetch_add(1, std::memory_order_relaxed);
            if (!ev->name.empty()) {
                store_.remove(resource_, object_key(ev->ns, ev->name), std::move(ev->object),
                              ObjectStore::Clock::now());
                if (on_change_) on_change_();
            } else {
                status_.decode_errors.fetch_add(1, std::memory_order_relaxed);
            }
            break;
        case WatchEventType::Bookmark:
            status_.bookmarks.fetch_add(1, std::memory_order_relaxed);
            break;
        case WatchEventType::Error:
            if (ev->status_code == 410) {
                gone_ = true;
            } else {
                watch_error_ = fmt::format("{}: watch {}: error event {}: {}", client_.config().describe(),
                                           resource_info(resource_).name, ev->status_code, ev->status_message);
            }
            return false;
    }
    if (!ev->resource_version.empty()) resource_version_ = std::move(ev->resource_version);
    return true;
}

Reflector::WatchEnd Reflector::watch() {
    gone_ = false;
    watch_error_.clear();
    std::uniform_int_distribution<int64_t> spread(0, std::max<int64_t>(options_.watch_timeout.count() - 1, 0));
    const auto timeout = options_.watch_timeout + std::chrono::seconds(spread(rng_));
    bool delivered = false;
    const LineHandler on_line = [&](std::string_view line) {
        delivered = true;
        return handle_watch_line(line);
    };
    // The server ends the watch at timeoutSeconds; the client's own limit only catches a server that does
    // not.
    const auto hard_limit = std::chrono::duration_cast<std::chrono::milliseconds>(timeout + std::chrono::seconds(60));
    const auto started = std::chrono::steady_clock::now();
    HttpResponse r =
        client_.stream_lines(watch_path(resource_, resource_version_, timeout, alt_), on_line, &cancel_, hard_limit);
    {
        std::lock_guard lock(status_.mu);
        status_.resource_version = resource_version_;
    }
    if (r.cancelled || cancel_.cancelled()) return WatchEnd::Cancelled;
    if (gone_ || r.status == 410) {
        log(fmt::format("{}: watch {}: resourceVersion {} is too old (410 Gone); listing again",
                        client_.config().describe(), resource_info(resource_).name, resource_version_));
        return WatchEnd::Gone;
    }
    if (!watch_error_.empty()) {
        fail(Error{watch_error_}, false);
        log(watch_error_);
        return WatchEnd::Failed;
    }
    if (r.status == 0) {
        // Dropped mid-stream or could not connect: resume from the last resourceVersion.
        const Error e = client_.error_for(r);
        if (delivered) {
            delay_ = options_.backoff_initial;  // it was healthy until now
        } else {
            fail(e, !r.retryable);
        }
        log(fmt::format("{} (watch {}; resuming from resourceVersion {})", e.message, resource_info(resource_).name,
                        resource_version_));
        return WatchEnd::Failed;
    }
    if (r.status == 404 && resource_info(resource_).optional) return WatchEnd::Gone;  // the CRD went: list again
    if (!r.ok()) {
        const long s = r.status;
        const Error e = client_.error_for(
            r, fmt::format("watch {} at the cluster scope", resource_info(resource_).name), rbac_remedy(resource_));
        fail(e, s == 401 || s == 403);
        log(e.message);
        return WatchEnd::Failed;
    }
    succeed();
    // A server that ends every watch at once would otherwise be asked again in a tight loop.
    if (!delivered && std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) return WatchEnd::Failed;
    return WatchEnd::Clean;
}

}  // namespace npt::k8s
