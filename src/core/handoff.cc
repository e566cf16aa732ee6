#include "core/handoff.h"

#include <algorithm>

namespace itsuka::core {

void Handoff::SetStore(HintStore* hints, HandoffOptions options) {
  hints_ = hints;
  options_ = options;
  limiter_ = RateLimiter(options.rate_keys_per_s);
}

Status Handoff::AddHint(const std::string& target, const std::string& key, const Object& obj) {
  if (hints_ == nullptr) return Status::Unavailable("this node keeps no hints");
  Status st = hints_->Add(target, key, obj);
  if (st.ok()) {
    ++stats_.written;
  } else {
    ++stats_.refused;
  }
  return st;
}

bool Handoff::HintExpired(const Hint& h) const {
  return wall_ms_ != 0 && wall_ms_ - h.updated_ms > options_.max_hint_age_ms;
}

Result<Object> Handoff::ReadWithHints(const std::string& key) {
  Result<Object> local = ctx_.store.Read(key);
  if (!local.ok() || hints_ == nullptr) return local;
  Object merged = std::move(local).value();
  for (const auto& [target, usage] : hints_->Usage()) {
    Result<std::optional<Hint>> h = hints_->Get(target, key);
    if (!h.ok()) return h.status();
    // An expired hint is as good as dropped: the tombstone grace only covers hints up
    // to handoff.max_hint_age_s, so an older one must not resurface through reads.
    if (h->has_value() && !HintExpired(**h)) merged = Merge(merged, (*h)->object);
  }
  return merged;
}

void Handoff::ExpireHints(const std::string& target, int64_t now_ms) {
  int64_t& next = expire_next_ms_[target];
  if (now_ms < next) return;
  next = now_ms + 1000;  // one bounded sweep step per target per second
  std::string& cursor = expire_cursor_[target];
  Result<std::vector<Hint>> batch = hints_->Scan(target, cursor, kExpireBatch);
  if (!batch.ok()) return;
  for (const Hint& h : *batch) {
    cursor = h.key + '\0';
    if (HintExpired(h) && !replaying_.count({target, h.key})) {
      hints_->Remove(target, h.key);
      ++stats_.dropped;
    }
  }
  if (batch->size() < kExpireBatch) cursor.clear();
}

void Handoff::Replay(int64_t now_ms, int64_t wall_ms) {
  if (hints_ == nullptr) return;
  wall_ms_ = wall_ms;
  for (const auto& [target, usage] : hints_->Usage()) {
    if (target == ctx_.self) continue;
    // A node that left the ring is not replayed to, nor one that is unreachable; their
    // hints still expire (handoff.max_hint_age_s), which the tombstone grace relies on.
    if (!ctx_.IsReachable(target) || !ctx_.ring ||
        std::find(ctx_.ring->members().begin(), ctx_.ring->members().end(), target) ==
            ctx_.ring->members().end()) {
      ExpireHints(target, now_ms);
      continue;
    }
    if (!ReplayTo(target, now_ms, wall_ms)) return;
  }
}

bool Handoff::ReplayTo(const std::string& target, int64_t now_ms, int64_t wall_ms) {
  size_t inflight = 0;
  for (const auto& [t, k] : replaying_) inflight += t == target ? 1 : 0;
  const size_t window = probing_.count(target) ? 1 : options_.max_inflight_per_target;
  if (inflight >= window) return true;
  const size_t want = window - inflight;
  const size_t granted = limiter_.Take(now_ms, want);
  if (granted == 0) return false;
  std::string& cursor = replay_cursor_[target];
  // Hints in flight are skipped, so ask for enough to find `granted` others.
  Result<std::vector<Hint>> batch = hints_->Scan(target, cursor, granted + inflight);
  if (!batch.ok()) {
    limiter_.Refund(granted);
    return true;
  }
  size_t used = 0;
  for (Hint& h : *batch) {
    if (used == granted) break;
    cursor = h.key + '\0';  // the smallest key after h.key
    if (replaying_.count({target, h.key})) continue;
    ++used;
    if (wall_ms - h.updated_ms > options_.max_hint_age_ms) {
      hints_->Remove(target, h.key);
      ++stats_.dropped;
      continue;
    }
    const uint64_t req = ctx_.requests.Open(Room::kHandoff);
    ctx_.out.sends.emplace_back(target, ReplicaWrite{req, h.key, h.object, ""});
    replaying_.insert({target, h.key});
    replays_.emplace(req, PendingReplay{target, std::move(h.key), std::move(h.object),
                                        now_ms + ctx_.options.request_timeout_ms});
  }
  if (batch->size() < granted + inflight) cursor.clear();  // reached the end: wrap around
  limiter_.Refund(granted - used);
  return true;
}

void Handoff::OnAck(uint64_t req_id, const std::string& from, const ReplicaWriteAck& m) {
  auto it = replays_.find(req_id);
  if (it == replays_.end() || it->second.target != from) return;
  PendingReplay& r = it->second;
  probing_.erase(from);  // it answers: its full window again
  if (!m.ok) {
    ++stats_.replay_failed;
  } else {
    // The target holds what was sent, durably. A hint that changed meanwhile (a newer
    // write merged into it) stays, to be sent again.
    Result<std::optional<Hint>> now = hints_->Get(r.target, r.key);
    if (now.ok() && now->has_value() && (*now)->object == r.sent) {
      hints_->Remove(r.target, r.key);
      ++stats_.replayed;
    }
  }
  Forget(it);
}

void Handoff::Tick(int64_t now_ms) {
  for (auto it = replays_.begin(); it != replays_.end();) {
    auto next = std::next(it);
    if (now_ms >= it->second.deadline_ms) {
      ++stats_.replay_failed;
      ++stats_.replay_timeouts;
      probing_.insert(it->second.target);
      Forget(it);
    }
    it = next;
  }
}

void Handoff::Forget(std::map<uint64_t, PendingReplay>::iterator it) {
  replaying_.erase({it->second.target, it->second.key});
  ctx_.requests.Close(it->first);
  replays_.erase(it);
}

}  // namespace itsuka::core
