#include "k8s/cluster_informer.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace npt::k8s {

namespace {

using Clock = std::chrono::steady_clock;

std::string seconds_phrase(std::chrono::milliseconds d) {
    return d.count() % 1000 == 0 ? fmt::format("{} s", d.count() / 1000) : fmt::format("{:.1f} s", d.count() / 1000.0);
}

}  // namespace

ClusterInformer::ClusterInformer(std::shared_ptr<ApiClient> client, InformerOptions options)
    : client_(std::move(client)), options_(std::move(options)), store_(options_.deleted_pod_grace) {}

ClusterInformer::~ClusterInformer() {
    stop();
}

void ClusterInformer::start() {
    std::lock_guard lock(mu_);
    if (started_) return;
    started_ = true;
    ReflectorOptions ro;
    ro.page_size = options_.page_size;
    ro.watch_timeout = options_.watch_timeout;
    ro.backoff_initial = options_.backoff_initial;
    ro.backoff_max = options_.backoff_max;
    ro.log = options_.log;
    for (Resource r : kAllResources) {
        reflectors_.push_back(std::make_unique<Reflector>(
            r, *client_, store_, ro, cancel_, [this] { notify_change(); }, [this] { notify_status(); }));
    }
    for (auto& refl : reflectors_) threads_.emplace_back([r = refl.get()] { r->run(); });
    threads_.emplace_back([this] { build_loop(); });
}

void ClusterInformer::stop() {
    {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        stopping_ = true;
    }
    cancel_.cancel();
    cv_.notify_all();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

void ClusterInformer::notify_change() {
    // Only the first change after a rebuild needs to wake the builder; the mutex orders the flag with its
    // wait.
    if (!dirty_.exchange(true, std::memory_order_acq_rel)) {
        std::lock_guard lock(mu_);
        cv_.notify_all();
    }
}

void ClusterInformer::notify_status() {
    std::lock_guard lock(mu_);
    cv_.notify_all();
}

bool ClusterInformer::all_synced() const {
    if (reflectors_.size() != kAllResources.size()) return false;
    return std::all_of(reflectors_.begin(), reflectors_.end(),
                       [](const auto& r) { return r->status().synced.load(std::memory_order_acquire); });
}

bool ClusterInformer::synced() const {
    std::lock_guard lock(mu_);
    return all_synced();
}

void ClusterInformer::build_loop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
        if (!all_synced()) {
            cv_.wait(lock);
            continue;
        }
        const auto expiry = store_.next_expiry();
        const auto now = Clock::now();
        const bool due = dirty_.load(std::memory_order_acquire) || !snapshot_ || (expiry && *expiry <= now);
        if (!due) {
            if (expiry) {
                cv_.wait_until(lock, *expiry);
            } else {
                cv_.wait(lock);
            }
            continue;
        }
        if (snapshot_) {
            const auto earliest = last_build_start_ + options_.min_rebuild_interval;
            if (now < earliest) {
                cv_.wait_until(lock, earliest, [&] { return stopping_; });
                continue;
            }
        }
        lock.unlock();
        rebuild();
        lock.lock();
    }
}

void ClusterInformer::rebuild() {
    std::lock_guard build_lock(build_mu_);
    const auto start = Clock::now();
    dirty_.store(false, std::memory_order_release);
    store_.expire(start);
    const uint64_t generation = store_.generation();
    {
        std::lock_guard lock(mu_);
        if (snapshot_ && generation == built_generation_) return;
    }
    // The generation is read before the copy: a change racing with it is rebuilt again later, never lost.
    auto state = ClusterState::build(store_.collect());
    const auto end = Clock::now();
    {
        std::lock_guard lock(mu_);
        snapshot_ = std::move(state);
        built_generation_ = generation;
        ++snapshots_;
        last_build_start_ = start;
        last_build_ = end - start;
    }
    cv_.notify_all();
}

Result<std::shared_ptr<const ClusterState>> ClusterInformer::wait_synced(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::unique_lock lock(mu_);
    for (;;) {
        if (snapshot_ && all_synced()) return snapshot_;
        if (stopping_)
            return Error{fmt::format("{}: stopped before the cluster state was synced", client_->config().describe())};
        if (options_.fail_fast) {
            for (const auto& r : reflectors_) {
                const auto& st = r->status();
                if (st.synced.load()) continue;
                std::lock_guard sl(st.mu);
                if (st.last_error_permanent && !st.last_error.empty()) return Error{st.last_error};
            }
        }
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
    }
    if (snapshot_ && all_synced()) return snapshot_;
    std::string missing, last_error;
    for (const auto& r : reflectors_) {
        const auto& st = r->status();
        if (st.synced.load()) continue;
        if (!missing.empty()) missing += ", ";
        missing += resource_info(r->resource()).name;
        std::lock_guard sl(st.mu);
        if (last_error.empty()) last_error = st.last_error;
    }
    if (!last_error.empty()) {
        return Error{fmt::format("{} (still failing after {})", last_error, seconds_phrase(timeout))};
    }
    if (missing.empty()) missing = "the first snapshot";
    return Error{fmt::format("{}: timed out after {} waiting for the first list of {}", client_->config().describe(),
                             seconds_phrase(timeout), missing)};
}

std::optional<std::string> ClusterInformer::permanent_failure() const {
    std::lock_guard lock(mu_);
    for (const auto& r : reflectors_) {
        const auto& st = r->status();
        if (st.synced.load()) continue;
        std::lock_guard sl(st.mu);
        if (st.last_error_permanent && !st.last_error.empty()) return st.last_error;
    }
    return std::nullopt;
}

std::shared_ptr<const ClusterState> ClusterInformer::snapshot() const {
    std::lock_guard lock(mu_);
    return snapshot_;
}

std::shared_ptr<const ClusterState> ClusterInformer::snapshot_now() {
    rebuild();
    return snapshot();
}

InformerStats ClusterInformer::stats() const {
    InformerStats s;
    const auto now = Clock::now();
    {
        std::lock_guard lock(mu_);
        s.synced = all_synced();
        s.snapshots = snapshots_;
        s.last_build = last_build_;
    }
    s.deleted_pods = store_.deleted_pods();
    for (const auto& r : reflectors_) {
        const auto& st = r->status();
        ResourceStats rs;
        rs.resource = std::string(resource_info(r->resource()).name);
        rs.synced = st.synced.load();
        rs.objects = store_.size(r->resource());
        rs.events = st.events.load();
        rs.bookmarks = st.bookmarks.load();
        rs.lists = st.lists.load();
        rs.relists = st.relists.load();
        rs.reconnects = st.reconnects.load();
        rs.decode_errors = st.decode_errors.load();
        const int64_t last = st.last_activity_ns.load();
        if (last != 0) rs.staleness = now - Clock::time_point(Clock::duration(last));
        std::lock_guard sl(st.mu);
        rs.resource_version = st.resource_version;
        rs.last_error = st.last_error;
        s.resources.push_back(std::move(rs));
    }
    return s;
}

Reflector* ClusterInformer::reflector(Resource r) {
    for (auto& refl : reflectors_)
        if (refl->resource() == r) return refl.get();
    return nullptr;
}

}  // namespace npt::k8s
