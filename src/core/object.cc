#include "core/object.h"

#include <algorithm>

namespace itsuka::core {
namespace {

bool DotLess(const Sibling& a, const Sibling& b) { return a.dot < b.dot; }

bool HasDot(const Object& obj, const Dot& dot) {
  auto it = std::lower_bound(obj.siblings.begin(), obj.siblings.end(), dot,
                             [](const Sibling& s, const Dot& d) { return s.dot < d; });
  return it != obj.siblings.end() && it->dot == dot;
}

}  // namespace

Result<Object> ApplyWrite(const Object& current, const VClock& context, std::string_view node,
                          NewVersion version, const ObjectLimits& limits,
                          const int64_t* increment) {
  if (version.expire_at_ms < 0 || version.written_at_ms < 0) {
    return Status::InvalidArgument("negative expiry or write time");
  }
  Object out;
  out.clock = current.clock;
  out.clock.Join(context);
  for (const Sibling& s : current.siblings) {
    if (!context.Covers(s.dot)) out.siblings.push_back(s);
  }
  // A fresh dot: above anything this node issued (its own entry) or the context saw.
  Dot dot{std::string(node), std::max(current.clock.Get(node), context.Get(node)) + 1};
  if (dot.counter > kMaxClockCounter) {
    return Status::InvalidArgument("vector clock counter would pass 2^53");
  }
  std::optional<CounterState> counter;
  if (increment != nullptr) {
    Result<Increment> inc = BuildIncrement(current, context, dot, *increment, version.written_at_ms);
    if (!inc.ok()) return inc.status();
    version.tombstone = false;
    version.value = std::to_string(inc->value);
    version.expire_at_ms = inc->expire_at_ms;
    counter = std::move(inc->state);
  } else {
    counter = ResetState(current, context, dot, version.tombstone, version.value);
  }
  out.clock.Raise(node, dot.counter);
  Sibling added{std::move(dot), version.tombstone,
                version.tombstone ? std::string() : std::move(version.value),
                version.tombstone ? 0 : version.expire_at_ms, version.written_at_ms,
                std::move(counter)};
  out.siblings.insert(std::upper_bound(out.siblings.begin(), out.siblings.end(), added, DotLess),
                      std::move(added));
  if (out.siblings.size() > limits.max_siblings) {
    return Status::Siblings("key would have " + std::to_string(out.siblings.size()) +
                            " concurrent versions (max " + std::to_string(limits.max_siblings) +
                            "); resolve them with VGET and SET ... CTX");
  }
  size_t bytes = ApproxBytes(out);
  if (bytes > limits.max_bytes) {
    return Status::TooBig("object would be " + std::to_string(bytes) + " bytes (max " +
                          std::to_string(limits.max_bytes) + ")");
  }
  return out;
}

Object Merge(const Object& a, const Object& b) {
  Object out;
  out.clock = a.clock;
  out.clock.Join(b.clock);
  // Keep a sibling unless the other side has seen its dot and no longer holds it.
  for (const Sibling& s : a.siblings) {
    if (!b.clock.Covers(s.dot) || HasDot(b, s.dot)) out.siblings.push_back(s);
  }
  for (const Sibling& s : b.siblings) {
    if (!a.clock.Covers(s.dot) && !HasDot(a, s.dot)) out.siblings.push_back(s);
  }
  std::sort(out.siblings.begin(), out.siblings.end(), DotLess);
  return out;
}

std::vector<const Sibling*> LiveSiblings(const Object& obj, int64_t now_ms) {
  std::vector<const Sibling*> out;
  for (const Sibling& s : obj.siblings) {
    if (s.IsLive(now_ms)) out.push_back(&s);
  }
  return out;
}

bool IsWellFormed(const Object& obj) {
  if (!VClock::IsWellFormed(obj.clock.entries())) return false;
  for (size_t i = 0; i < obj.siblings.size(); ++i) {
    const Sibling& s = obj.siblings[i];
    if (s.dot.counter == 0 || !obj.clock.Covers(s.dot)) return false;
    if (i > 0 && !(obj.siblings[i - 1].dot < s.dot)) return false;
    if (s.tombstone && !s.value.empty()) return false;
    if (s.expire_at_ms < 0 || s.written_at_ms < 0) return false;
    if (s.counter && !IsWellFormed(*s.counter)) return false;
  }
  return true;
}

Object Salvage(const Object& raw, size_t* dropped) {
  *dropped = 0;
  if (IsWellFormed(raw)) return raw;
  Object out;
  for (const auto& [node, counter] : raw.clock.entries()) {
    if (VClock::IsWellFormed({{node, counter}})) {
      out.clock.Raise(node, counter);
    } else {
      ++*dropped;
    }
  }
  std::vector<Sibling> sibs = raw.siblings;
  std::sort(sibs.begin(), sibs.end(), DotLess);
  for (Sibling& s : sibs) {
    const bool ok = s.dot.counter != 0 && out.clock.Covers(s.dot) &&
                    !(s.tombstone && !s.value.empty()) && s.expire_at_ms >= 0 &&
                    s.written_at_ms >= 0 && (!s.counter || IsWellFormed(*s.counter)) &&
                    (out.siblings.empty() || out.siblings.back().dot < s.dot);
    if (ok) {
      out.siblings.push_back(std::move(s));
    } else {
      ++*dropped;
    }
  }
  return out;
}

bool HasCounter(const Object& obj) {
  return std::any_of(obj.siblings.begin(), obj.siblings.end(),
                     [](const Sibling& s) { return s.counter.has_value(); });
}

size_t ApproxBytes(const Object& obj) {
  size_t n = 8;
  for (const auto& [node, counter] : obj.clock.entries()) n += node.size() + 10;
  for (const Sibling& s : obj.siblings) {
    n += s.value.size() + s.dot.node.size() + 32;
    if (!s.counter) continue;
    n += s.counter->base_id.node.size() + 32;
    for (const CounterShard& c : s.counter->floor) n += c.actor.size() + 20;
    for (const CounterShard& c : s.counter->shards) n += c.actor.size() + 20;
  }
  return n;
}

}  // namespace itsuka::core
