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

namespace {
int CountPrimaries(const std::vector<Target>& targets) {
  return static_cast<int>(std::count_if(targets.begin(), targets.end(),
                                        [](const Target& t) { return t.primary; }));
}

int IndexOf(const std::vector<Target>& targets, const std::vector<int>& state,
            const std::string& node) {
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i].node == node && state[i] == 0) return static_cast<int>(i);
  }
  return -1;
}
}  // namespace

// ---- PutCoordinator ---------------------------------------------------------------

PutCoordinator::PutCoordinator(std::vector<Target> targets, int w, int pw, int64_t deadline_ms)
    : targets_(std::move(targets)), state_(targets_.size(), 0), w_(w), pw_(pw),
      deadline_ms_(deadline_ms) {}

Outcome PutCoordinator::Check() {
  const int reachable = static_cast<int>(targets_.size());
  const int primaries = CountPrimaries(targets_);
  if (reachable < w_) {
    outcome_ = Outcome::kUnavailable;
    why_ = "need " + std::to_string(w_) + " replicas, " + std::to_string(reachable) + " reachable";
  } else if (primaries < pw_) {
    outcome_ = Outcome::kUnavailable;
    why_ = "need " + std::to_string(pw_) + " primary replicas, " + std::to_string(primaries) +
           " reachable";
  }
  return outcome_;
}

Outcome PutCoordinator::OnAck(const std::string& node, bool ok) {
  if (outcome_ != Outcome::kPending) return outcome_;
  int i = IndexOf(targets_, state_, node);
  if (i < 0) return outcome_;
  state_[i] = ok ? 1 : -1;
  if (ok) {
    ++acks_;
    if (targets_[i].primary) ++primary_acks_;
  }
  return Evaluate();
}

Outcome PutCoordinator::Evaluate() {
  if (acks_ >= w_ && primary_acks_ >= pw_) {
    outcome_ = Outcome::kOk;
    return outcome_;
  }
  int waiting = 0, waiting_primaries = 0;
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (state_[i] == 0) {
      ++waiting;
      if (targets_[i].primary) ++waiting_primaries;
    }
  }
  if (acks_ + waiting < w_ || primary_acks_ + waiting_primaries < pw_) {
    // Some replicas may have applied the write: the outcome is unknown, not "failed".
    outcome_ = Outcome::kTimeout;
    why_ = std::to_string(acks_) + " of " + std::to_string(w_) +
           " acks, other replicas failed (outcome unknown)";
  }
  return outcome_;
}

Outcome PutCoordinator::OnTime(int64_t now_ms) {
  if (outcome_ == Outcome::kPending && now_ms >= deadline_ms_) {
    outcome_ = Outcome::kTimeout;
    why_ = std::to_string(acks_) + " of " + std::to_string(w_) + " acks (outcome unknown)";
  }
  return outcome_;
}

Status PutCoordinator::ToStatus() const {
  switch (outcome_) {
    case Outcome::kOk: return Status::Ok();
    case Outcome::kUnavailable: return Status::Unavailable(why_);
    case Outcome::kTimeout: return Status::Timeout(why_);
    case Outcome::kPending: break;
  }
  return Status::Busy("request still pending");
}

// ---- GetCoordinator ---------------------------------------------------------------

GetCoordinator::GetCoordinator(std::vector<Target> targets, int r, int pr, int64_t deadline_ms)
    : targets_(std::move(targets)), state_(targets_.size(), 0), replies_(targets_.size()), r_(r),
      pr_(pr), deadline_ms_(deadline_ms) {}

Outcome GetCoordinator::Check() {
  const int reachable = static_cast<int>(targets_.size());
  const int primaries = CountPrimaries(targets_);
  if (reachable < r_) {
    outcome_ = Outcome::kUnavailable;
    why_ = "need " + std::to_string(r_) + " replicas, " + std::to_string(reachable) + " reachable";
  } else if (primaries < pr_) {
    outcome_ = Outcome::kUnavailable;
    why_ = "need " + std::to_string(pr_) + " primary replicas, " + std::to_string(primaries) +
           " reachable";
  }
  return outcome_;
}

Outcome GetCoordinator::OnReply(const std::string& node, bool ok, const Object& obj) {
  int i = IndexOf(targets_, state_, node);
  if (i < 0) return outcome_;
  state_[i] = ok ? 1 : -1;
  if (ok) {
    replies_[i] = obj;
    merged_ = Merge(merged_, obj);
    ++replies_ok_;
    if (targets_[i].primary) ++primary_replies_;
  }
  return Evaluate();
}

Outcome GetCoordinator::Evaluate() {
  if (outcome_ != Outcome::kPending) return outcome_;
  if (replies_ok_ >= r_ && primary_replies_ >= pr_) {
    outcome_ = Outcome::kOk;
    return outcome_;
  }
  int waiting = 0, waiting_primaries = 0;
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (state_[i] == 0) {
      ++waiting;
      if (targets_[i].primary) ++waiting_primaries;
    }
  }
  if (replies_ok_ + waiting < r_ || primary_replies_ + waiting_primaries < pr_) {
    outcome_ = Outcome::kUnavailable;
    why_ = std::to_string(replies_ok_) + " of " + std::to_string(r_) +
           " replicas answered, the others failed";
  }
  return outcome_;
}

Outcome GetCoordinator::OnTime(int64_t now_ms) {
  if (now_ms >= deadline_ms_) {
    timed_out_ = true;
    if (outcome_ == Outcome::kPending) {
      outcome_ = Outcome::kTimeout;
      why_ = std::to_string(replies_ok_) + " of " + std::to_string(r_) + " replicas answered in time";
    }
  }
  return outcome_;
}

Status GetCoordinator::ToStatus() const {
  switch (outcome_) {
    case Outcome::kOk: return Status::Ok();
    case Outcome::kUnavailable: return Status::Unavailable(why_);
    case Outcome::kTimeout: return Status::Timeout(why_);
    case Outcome::kPending: break;
  }
  return Status::Busy("request still pending");
}

bool GetCoordinator::done() const {
  return timed_out_ || std::none_of(state_.begin(), state_.end(), [](int s) { return s == 0; });
}

std::vector<std::string> GetCoordinator::StaleReplicas() const {
  std::vector<std::string> out;
  if (merged_.empty()) return out;
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (state_[i] == 1 && !(replies_[i] == merged_)) out.push_back(targets_[i].node);
  }
  return out;
}

}  // namespace itsuka::core
