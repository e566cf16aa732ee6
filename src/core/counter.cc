#include "core/counter.h"

#include <algorithm>
#include <charconv>
#include <tuple>

#include "core/object.h"

namespace itsuka::core {
namespace {

constexpr char kNotInteger[] = "value is not an integer or out of range";
constexpr char kOverflow[] = "increment or decrement would overflow";

bool ShardsWellFormed(const std::vector<CounterShard>& shards) {
  if (shards.size() > kMaxCounterShards) return false;
  for (size_t i = 0; i < shards.size(); ++i) {
    const CounterShard& s = shards[i];
    if (s.actor.empty() || s.actor.size() > kMaxClockNodeBytes) return false;
    if (s.seq == 0 || s.seq > kMaxClockCounter) return false;
    if (i > 0 && !(shards[i - 1].actor < s.actor)) return false;
  }
  return true;
}

// Per actor, the shard with the larger seq.
std::vector<CounterShard> MergeShards(const std::vector<CounterShard>& a,
                                      const std::vector<CounterShard>& b) {
  std::vector<CounterShard> out;
  out.reserve(std::max(a.size(), b.size()));
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].actor < b[j].actor)) {
      out.push_back(a[i++]);
    } else if (i == a.size() || b[j].actor < a[i].actor) {
      out.push_back(b[j++]);
    } else {
      // Equal seqs hold equal values (a seq is a dot, issued once); the tie-break on
      // value only keeps the merge deterministic for forged input.
      out.push_back(std::tie(a[i].seq, a[i].value) >= std::tie(b[j].seq, b[j].value) ? a[i] : b[j]);
      ++i;
      ++j;
    }
  }
  return out;
}

auto BaseKey(const CounterState& c) {
  return std::tie(c.epoch, c.explicit_base, c.base_id, c.base_kind, c.base);
}

// A plain integer string covered by an increment: an explicit base of epoch 1 (as if
// its SET had carried a state), so it wins over a concurrent INCR of a missing key.
CounterState PseudoState(const Sibling& s, int64_t value) {
  CounterState c;
  c.epoch = 1;
  c.base_id = s.dot;
  c.base = value;
  return c;
}

// The merge of the states of the siblings of `current` that `context` covers.
std::optional<CounterState> CoveredStates(const Object& current, const VClock& context) {
  std::optional<CounterState> merged;
  for (const Sibling& s : current.siblings) {
    if (!s.counter || !context.Covers(s.dot)) continue;
    merged = merged ? MergeCounters(*merged, *s.counter) : *s.counter;
  }
  return merged;
}

bool ParseInt(std::string_view s, int64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

}  // namespace

bool IsWellFormed(const CounterState& c) {
  if (c.base_id.counter == 0 || c.base_id.counter > kMaxClockCounter) return false;
  if (c.base_id.node.empty() || c.base_id.node.size() > kMaxClockNodeBytes) return false;
  if (c.base_kind != CounterState::Base::kInt && c.base != 0) return false;
  return ShardsWellFormed(c.floor) && ShardsWellFormed(c.shards);
}

CounterState MergeCounters(const CounterState& a, const CounterState& b) {
  const CounterState& winner = BaseKey(a) >= BaseKey(b) ? a : b;
  CounterState out;
  out.epoch = winner.epoch;
  out.explicit_base = winner.explicit_base;
  out.base_id = winner.base_id;
  out.base_kind = winner.base_kind;
  out.base = winner.base;
  // Equal base ids carry equal floors (a base is made once); merging them anyway keeps
  // the result deterministic for forged input.
  out.floor = BaseKey(a) == BaseKey(b) ? MergeShards(a.floor, b.floor) : winner.floor;
  out.shards = MergeShards(a.shards, b.shards);
  return out;
}

__int128 CounterTotal(const CounterState& c) {
  __int128 total = c.base;
  size_t f = 0;
  for (const CounterShard& s : c.shards) {
    while (f < c.floor.size() && c.floor[f].actor < s.actor) ++f;
    const int64_t floor = f < c.floor.size() && c.floor[f].actor == s.actor ? c.floor[f].value : 0;
    total += static_cast<__int128>(s.value) - floor;
  }
  // A floor entry with no shard: that actor's shard is still at its floor elsewhere.
  for (const CounterShard& fl : c.floor) {
    auto it = std::lower_bound(c.shards.begin(), c.shards.end(), fl.actor,
                               [](const CounterShard& s, const std::string& a) { return s.actor < a; });
    if (it == c.shards.end() || it->actor != fl.actor) total -= fl.value;
  }
  return total;
}

std::optional<CounterView> ReadCounter(const Object& obj, int64_t now_ms) {
  std::optional<CounterState> merged;
  CounterView view;
  bool any_live = false, all_zero_expiry = false;
  bool any_state = false;
  for (const Sibling& s : obj.siblings) {
    const bool live = s.IsLive(now_ms);
    any_state = any_state || s.counter.has_value();
    if (live && !s.counter) {
      // A plain integer beside counter versions: the base BuildIncrement would take.
      int64_t v = 0;
      if (!ParseInt(s.value, &v)) return std::nullopt;
      const CounterState pseudo = PseudoState(s, v);
      merged = merged ? MergeCounters(*merged, pseudo) : pseudo;
    }
    if (live) {
      any_live = true;
      if (s.expire_at_ms == 0) all_zero_expiry = true;
      view.expire_at_ms = std::max(view.expire_at_ms, s.expire_at_ms);
    }
    if (s.counter) merged = merged ? MergeCounters(*merged, *s.counter) : *s.counter;
  }
  if (!any_state) return std::nullopt;
  if (!any_live) return CounterView{};
  if (merged->base_kind == CounterState::Base::kText) return std::nullopt;
  const __int128 total = CounterTotal(*merged);
  if (total > INT64_MAX || total < INT64_MIN) return std::nullopt;
  view.exists = true;
  view.value = static_cast<int64_t>(total);
  if (all_zero_expiry) view.expire_at_ms = 0;
  return view;
}

std::optional<CounterState> ResetState(const Object& current, const VClock& context,
                                       const Dot& dot, bool tombstone, std::string_view value) {
  std::optional<CounterState> seen = CoveredStates(current, context);
  if (!seen) return std::nullopt;
  CounterState out;
  out.epoch = seen->epoch + 1;
  out.base_id = dot;
  int64_t v = 0;
  if (tombstone) {
    out.base_kind = CounterState::Base::kDeleted;
  } else if (ParseInt(value, &v)) {
    out.base = v;
  } else {
    out.base_kind = CounterState::Base::kText;
  }
  out.floor = seen->shards;
  out.shards = seen->shards;
  return out;
}

Result<Increment> BuildIncrement(const Object& current, const VClock& context, const Dot& dot,
                                 int64_t delta, int64_t now_ms) {
  std::optional<CounterState> seen = CoveredStates(current, context);
  std::vector<const Sibling*> live;
  for (const Sibling& s : current.siblings) {
    if (!context.Covers(s.dot) || !s.IsLive(now_ms)) continue;
    live.push_back(&s);
    if (s.counter) continue;
    int64_t v = 0;
    if (!ParseInt(s.value, &v)) return Status::InvalidArgument(kNotInteger);
    const CounterState pseudo = PseudoState(s, v);
    seen = seen ? MergeCounters(*seen, pseudo) : pseudo;
  }
  Increment inc;
  if (live.empty()) {
    // A missing (deleted, expired or new) key starts from 0: an implicit base above every
    // state seen, whose floor wipes the increments those states held.
    inc.state.epoch = seen ? seen->epoch + 1 : 1;
    inc.state.explicit_base = false;
    inc.state.base_id = dot;
    if (seen) inc.state.floor = inc.state.shards = seen->shards;
  } else {
    if (seen->base_kind == CounterState::Base::kText) return Status::InvalidArgument(kNotInteger);
    inc.state = std::move(*seen);
    if (live.size() == 1) inc.expire_at_ms = live[0]->expire_at_ms;
  }
  const __int128 before = CounterTotal(inc.state);
  if (before > INT64_MAX || before < INT64_MIN) return Status::InvalidArgument(kNotInteger);
  const __int128 after = before + delta;
  if (after > INT64_MAX || after < INT64_MIN) return Status::InvalidArgument(kOverflow);
  std::vector<CounterShard>& shards = inc.state.shards;
  auto it = std::lower_bound(shards.begin(), shards.end(), dot.node,
                             [](const CounterShard& s, const std::string& a) { return s.actor < a; });
  if (it == shards.end() || it->actor != dot.node) {
    if (shards.size() >= kMaxCounterShards) return Status::TooBig("counter has too many shards");
    it = shards.insert(it, CounterShard{dot.node, 0, 0});
  }
  const __int128 shard = static_cast<__int128>(it->value) + delta;
  if (shard > INT64_MAX || shard < INT64_MIN) return Status::InvalidArgument(kOverflow);
  it->seq = dot.counter;
  it->value = static_cast<int64_t>(shard);
  inc.value = static_cast<int64_t>(after);
  return inc;
}

bool ParseCounterDelta(std::string_view text, int64_t* delta) { return ParseInt(text, delta); }

}  // namespace itsuka::core
