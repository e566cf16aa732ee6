#include "core/quorum.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace itsuka::core {

Result<int> ParseQuorum(std::string_view text, int n) {
  std::string t(text);
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "one") return 1;
  if (t == "quorum") return n / 2 + 1;
  if (t == "all") return n;
  int v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size() || v < 1 || v > n) {
    return Status::InvalidArgument("quorum must be one, quorum, all or a number from 1 to " +
                                   std::to_string(n));
  }
  return v;
}

std::vector<Target> PickTargets(const std::vector<std::string>& primaries,
                                const std::vector<std::string>& fallbacks,
                                const std::vector<bool>& primary_up,
                                const std::vector<bool>& fallback_up, bool sloppy) {
  std::vector<Target> out;
  size_t next_fallback = 0;
  for (size_t i = 0; i < primaries.size(); ++i) {
    if (primary_up[i]) {
      out.push_back(Target{primaries[i], true, {}});
      continue;
    }
    if (!sloppy) continue;
    while (next_fallback < fallbacks.size() && !fallback_up[next_fallback]) ++next_fallback;
    if (next_fallback < fallbacks.size()) {
      out.push_back(Target{fallbacks[next_fallback++], false, primaries[i]});
    }
  }
  return out;
}

// ---- QuorumTracker ----------------------------------------------------------------

QuorumTracker::QuorumTracker(std::vector<Target> targets, int need, int need_primaries)
    : targets_(std::move(targets)), state_(targets_.size(), 0), need_(need),
      need_primaries_(need_primaries) {}

bool QuorumTracker::Reachable() {
  const int reachable = static_cast<int>(targets_.size());
  const int primaries = static_cast<int>(std::count_if(
      targets_.begin(), targets_.end(), [](const Target& t) { return t.primary; }));
  if (reachable < need_) {
    why_ = "need " + std::to_string(need_) + " replicas, " + std::to_string(reachable) +
           " reachable";
    return false;
  }
  if (primaries < need_primaries_) {
    why_ = "need " + std::to_string(need_primaries_) + " primary replicas, " +
           std::to_string(primaries) + " reachable";
    return false;
  }
  return true;
}

int QuorumTracker::Record(const std::string& node, bool ok) {
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (targets_[i].node != node || state_[i] != 0) continue;
    state_[i] = ok ? 1 : -1;
    if (ok) {
      ++got_;
      if (targets_[i].primary) ++got_primaries_;
    }
    return static_cast<int>(i);
  }
  return -1;
}

bool QuorumTracker::StillPossible() const {
  int waiting = 0, waiting_primaries = 0;
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (state_[i] == 0) {
      ++waiting;
      if (targets_[i].primary) ++waiting_primaries;
    }
  }
  return got_ + waiting >= need_ && got_primaries_ + waiting_primaries >= need_primaries_;
}

bool QuorumTracker::AllAnswered() const {
  return std::none_of(state_.begin(), state_.end(), [](int s) { return s == 0; });
}

std::string QuorumTracker::Progress(const char* noun) const {
  return std::to_string(got_) + " of " + std::to_string(need_) + " " + noun;
}

Status OutcomeStatus(Outcome outcome, const std::string& why) {
  switch (outcome) {
    case Outcome::kOk: return Status::Ok();
    case Outcome::kUnavailable: return Status::Unavailable(why);
    case Outcome::kTimeout: return Status::Timeout(why);
    case Outcome::kPending: break;
  }
  return Status::Busy("request still pending");
}

// ---- PutCoordinator ---------------------------------------------------------------

PutCoordinator::PutCoordinator(std::vector<Target> targets, int w, int pw, int64_t deadline_ms)
    : quorum_(std::move(targets), w, pw), deadline_ms_(deadline_ms) {}

Outcome PutCoordinator::Check() {
  if (!quorum_.Reachable()) {
    outcome_ = Outcome::kUnavailable;
    why_ = quorum_.why();
  }
  return outcome_;
}

Outcome PutCoordinator::OnAck(const std::string& node, bool ok) {
  if (outcome_ != Outcome::kPending || quorum_.Record(node, ok) < 0) return outcome_;
  if (quorum_.Met()) {
    outcome_ = Outcome::kOk;
  } else if (!quorum_.StillPossible()) {
    // Some replicas may have applied the write: the outcome is unknown, not "failed".
    outcome_ = Outcome::kTimeout;
    why_ = quorum_.Progress("acks") + ", other replicas failed (outcome unknown)";
  }
  return outcome_;
}

Outcome PutCoordinator::OnTime(int64_t now_ms) {
  if (outcome_ == Outcome::kPending && now_ms >= deadline_ms_) {
    outcome_ = Outcome::kTimeout;
    why_ = quorum_.Progress("acks") + " (outcome unknown)";
  }
  return outcome_;
}

// ---- GetCoordinator ---------------------------------------------------------------

GetCoordinator::GetCoordinator(std::vector<Target> targets, int r, int pr, int64_t deadline_ms)
    : quorum_(std::move(targets), r, pr), replies_(quorum_.targets().size()),
      deadline_ms_(deadline_ms) {}

Outcome GetCoordinator::Check() {
  if (!quorum_.Reachable()) {
    outcome_ = Outcome::kUnavailable;
    why_ = quorum_.why();
  }
  return outcome_;
}

Outcome GetCoordinator::OnReply(const std::string& node, bool ok, const Object& obj) {
  // Replies after the outcome still count: they feed read repair.
  int i = quorum_.Record(node, ok);
  if (i < 0) return outcome_;
  if (ok) {
    replies_[i] = obj;
    // Merge is idempotent: a reply equal to the merge so far (digest reads, replicas
    // in sync) leaves it as it is.
    if (!(obj == merged_)) merged_ = Merge(merged_, obj);
  } else if (!obj.empty()) {
    merged_ = Merge(merged_, obj);  // no vote, but what it holds is not lost
  }
  if (outcome_ != Outcome::kPending) return outcome_;
  if (quorum_.Met()) {
    outcome_ = Outcome::kOk;
  } else if (!quorum_.StillPossible()) {
    outcome_ = Outcome::kUnavailable;
    why_ = quorum_.Progress("replicas answered") + ", the others failed";
  }
  return outcome_;
}

Outcome GetCoordinator::OnTime(int64_t now_ms) {
  if (now_ms >= deadline_ms_) {
    timed_out_ = true;
    if (outcome_ == Outcome::kPending) {
      outcome_ = Outcome::kTimeout;
      why_ = quorum_.Progress("replicas answered in time");
    }
  }
  return outcome_;
}

const Object* GetCoordinator::ReplyOf(const std::string& node) const {
  const std::vector<Target>& t = quorum_.targets();
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].node == node && quorum_.state(i) == 1) return &replies_[i];
  }
  return nullptr;
}

std::vector<std::string> GetCoordinator::StaleReplicas() const {
  std::vector<std::string> out;
  if (merged_.empty()) return out;
  const std::vector<Target>& t = quorum_.targets();
  for (size_t i = 0; i < t.size(); ++i) {
    if (quorum_.state(i) == 1 && !(replies_[i] == merged_)) out.push_back(t[i].node);
  }
  return out;
}

}  // namespace itsuka::core
