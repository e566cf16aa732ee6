// Convergent counters (core/counter.h) against a brute-force model of causality:
// random increments, SETs and DELs at three replicas with random merges between them.
// The model keeps each event's causal past (the events its replica knew) and predicts
// the value: the winning base plus every increment that base did not see.
#include "core/counter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "core/object.h"
#include "wire/object_codec.h"

namespace itsuka::core {
namespace {

const ObjectLimits kLimits{1024, 1u << 30};

struct Event {
  enum Kind { kIncr, kSet, kDel } kind;
  int64_t amount = 0;         // delta or SET value
  bool base = false;          // a SET, a DEL, or an INCR of a missing key
  std::set<int> past;         // events the replica knew when it ran this one
  Dot dot;
};

struct Replica {
  std::string actor;
  Object obj;
  std::set<int> known;
};

class Model {
 public:
  std::vector<Event> events;
  // DVV semantics: a version exists unless a later event saw it.
  bool Exists(const std::set<int>& known) const {
    for (int e : known) {
      if (events[e].kind == Event::kDel) continue;
      bool seen = false;
      for (int f : known) seen = seen || events[f].past.count(e) > 0;
      if (!seen) return true;
    }
    return false;
  }
  int Find(const Dot& d) const {
    for (size_t i = 0; i < events.size(); ++i) {
      if (events[i].dot == d) return static_cast<int>(i);
    }
    return -1;
  }
};

Object ApplyOp(Replica& r, Model& m, Event::Kind kind, int64_t amount, int64_t now) {
  Event ev{kind, amount, false, r.known, {}};
  NewVersion v{kind == Event::kDel, kind == Event::kSet ? std::to_string(amount) : "", 0, now};
  Result<Object> next = ApplyWrite(r.obj, r.obj.clock, r.actor, v, kLimits,
                                   kind == Event::kIncr ? &amount : nullptr);
  EXPECT_TRUE(next.ok()) << next.status().ToString();
  ev.base = kind != Event::kIncr || !m.Exists(r.known);
  ev.dot = Dot{r.actor, next->clock.Get(r.actor)};
  r.obj = *next;
  r.known.insert(static_cast<int>(m.events.size()));
  m.events.push_back(ev);
  return r.obj;
}

void CheckAgainstModel(const Object& obj, const std::set<int>& known, const Model& m) {
  std::optional<CounterView> view = ReadCounter(obj, 1);
  const bool exists = m.Exists(known);
  if (!HasCounter(obj)) {
    // Only plain SETs/DELs so far.
    return;
  }
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->exists, exists);
  if (!exists) return;
  CounterState merged;
  bool first = true;
  for (const Sibling& s : obj.siblings) {
    if (!s.counter) continue;
    merged = first ? *s.counter : MergeCounters(merged, *s.counter);
    first = false;
  }
  // A live plain SET beside counter versions would read as siblings; the test's SETs
  // always follow a counter version or are covered by the next increment.
  int w = m.Find(merged.base_id);
  int64_t expect = 0;
  if (w >= 0) {
    ASSERT_TRUE(m.events[w].base);
    // The winner is a maximal base: no known base saw it.
    for (int e : known) {
      if (m.events[e].base) {
        ASSERT_FALSE(m.events[e].past.count(w)) << "base " << w << " by " << e;
      }
    }
    if (m.events[w].kind == Event::kSet) expect = m.events[w].amount;
  }
  for (int e : known) {
    if (m.events[e].kind == Event::kIncr && (w < 0 || !m.events[w].past.count(e)) && e != w) {
      expect += m.events[e].amount;
    }
    if (m.events[e].kind == Event::kIncr && e == w) expect += m.events[e].amount;
  }
  EXPECT_EQ(view->value, expect);
}

TEST(Counter, IncrementsOnlyCountOnceInEveryMergeOrder) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    Model m;
    std::vector<Replica> reps{{"a", {}, {}}, {"b", {}, {}}, {"c", {}, {}}};
    int64_t sum = 0;
    for (int step = 0; step < 40; ++step) {
      Replica& r = reps[rng() % 3];
      if (rng() % 3 == 0) {
        Replica& from = reps[rng() % 3];
        r.obj = Merge(r.obj, from.obj);
        r.known.insert(from.known.begin(), from.known.end());
      } else {
        const int64_t d = static_cast<int64_t>(rng() % 21) - 10;
        ApplyOp(r, m, Event::kIncr, d, 1);
        sum += d;
      }
    }
    std::vector<int> order{0, 1, 2};
    std::optional<Object> first;
    do {
      Object all = reps[order[0]].obj;
      for (int i : {order[1], order[2]}) all = Merge(all, reps[i].obj);
      if (!first) first = all;
      EXPECT_EQ(all, *first) << "seed " << seed;
      std::optional<CounterView> v = ReadCounter(all, 1);
      ASSERT_TRUE(v && v->exists) << "seed " << seed;
      EXPECT_EQ(v->value, sum) << "seed " << seed;
    } while (std::next_permutation(order.begin(), order.end()));
  }
}

TEST(Counter, SetsAndDelsRacingIncrementsFollowTheModel) {
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    Model m;
    std::vector<Replica> reps{{"a", {}, {}}, {"b", {}, {}}, {"c", {}, {}}};
    // Start from a counter so that every later SET/DEL supersedes a counter version.
    ApplyOp(reps[0], m, Event::kIncr, 1, 1);
    for (Replica& r : reps) {
      r.obj = reps[0].obj;
      r.known = reps[0].known;
    }
    for (int step = 0; step < 30; ++step) {
      Replica& r = reps[rng() % 3];
      const uint32_t what = rng() % 10;
      if (what < 3) {
        Replica& from = reps[rng() % 3];
        r.obj = Merge(r.obj, from.obj);
        r.known.insert(from.known.begin(), from.known.end());
      } else if (what < 8) {
        ApplyOp(r, m, Event::kIncr, static_cast<int64_t>(rng() % 9) + 1, 1);
      } else if (what == 8) {
        ApplyOp(r, m, Event::kSet, static_cast<int64_t>(rng() % 100) * 100, 1);
      } else {
        ApplyOp(r, m, Event::kDel, 0, 1);
      }
      CheckAgainstModel(r.obj, r.known, m);
      if (HasFailure()) return;
    }
    Object all = Merge(Merge(reps[0].obj, reps[1].obj), reps[2].obj);
    Object other = Merge(reps[2].obj, Merge(reps[1].obj, reps[0].obj));
    EXPECT_EQ(all, other) << "seed " << seed;
    std::set<int> known;
    for (const Replica& r : reps) known.insert(r.known.begin(), r.known.end());
    CheckAgainstModel(all, known, m);
    if (HasFailure()) return;
  }
}

TEST(Counter, MergeIsASemilattice) {
  std::mt19937 rng(7);
  auto random_state = [&] {
    CounterState c;
    c.epoch = rng() % 3;
    c.explicit_base = rng() % 2;
    c.base_id = Dot{std::string(1, static_cast<char>('a' + rng() % 3)), rng() % 3 + 1};
    c.base = static_cast<int64_t>(rng() % 5);
    for (const char* a : {"a", "b", "c"}) {
      if (rng() % 2) c.shards.push_back({a, rng() % 4 + 1, static_cast<int64_t>(rng() % 7)});
    }
    return c;
  };
  for (int i = 0; i < 2000; ++i) {
    CounterState a = random_state(), b = random_state(), c = random_state();
    EXPECT_EQ(MergeCounters(a, b), MergeCounters(b, a));
    EXPECT_EQ(MergeCounters(MergeCounters(a, b), c), MergeCounters(a, MergeCounters(b, c)));
    EXPECT_EQ(MergeCounters(a, a), a);
  }
}

TEST(Counter, RedisSemantics) {
  Object o;
  int64_t one = 1;
  Result<Object> r = ApplyWrite(o, o.clock, "a", NewVersion{false, "10", 0, 1}, kLimits);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(HasCounter(*r));  // a plain SET stays a plain string
  r = ApplyWrite(*r, r->clock, "a", NewVersion{}, kLimits, &one);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadCounter(*r, 1)->value, 11);  // SET 10, INCR: 11
  r = ApplyWrite(*r, r->clock, "b", NewVersion{true, "", 0, 1}, kLimits);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(ReadCounter(*r, 1)->exists);  // DEL
  r = ApplyWrite(*r, r->clock, "a", NewVersion{}, kLimits, &one);
  EXPECT_EQ(ReadCounter(*r, 1)->value, 1);  // DEL, INCR: 1
  Result<Object> text = ApplyWrite(*r, r->clock, "a", NewVersion{false, "abc", 0, 1}, kLimits);
  ASSERT_TRUE(text.ok());
  EXPECT_FALSE(ReadCounter(*text, 1).has_value());  // reads as the plain string
  Result<Object> bad = ApplyWrite(*text, text->clock, "a", NewVersion{}, kLimits, &one);
  EXPECT_EQ(bad.status().message(), "value is not an integer or out of range");
  int64_t big = INT64_MAX;
  Result<Object> over = ApplyWrite(*r, r->clock, "a", NewVersion{}, kLimits, &big);
  EXPECT_EQ(over.status().message(), "increment or decrement would overflow");
  // Expiry is kept by an increment and a missing (expired) key starts from 0.
  Result<Object> ttl = ApplyWrite(Object(), VClock(), "a", NewVersion{false, "5", 100, 1}, kLimits);
  Result<Object> inc = ApplyWrite(*ttl, ttl->clock, "a", NewVersion{false, "", 0, 2}, kLimits, &one);
  EXPECT_EQ(inc->siblings.back().expire_at_ms, 100);
  Result<Object> late = ApplyWrite(*inc, inc->clock, "a", NewVersion{false, "", 0, 200}, kLimits, &one);
  EXPECT_EQ(ReadCounter(*late, 200)->value, 1);
}

TEST(Counter, IncrementConcurrentWithSetSurvivesOnTopOfIt) {
  int64_t one = 1;
  Result<Object> base = ApplyWrite(Object(), VClock(), "a", NewVersion{}, kLimits, &one);
  base = ApplyWrite(*base, base->clock, "b", NewVersion{}, kLimits, &one);  // 2
  Result<Object> set = ApplyWrite(*base, base->clock, "a", NewVersion{false, "100", 0, 1}, kLimits);
  Result<Object> inc = ApplyWrite(*base, base->clock, "b", NewVersion{}, kLimits, &one);  // 3 at b
  Object merged = Merge(*set, *inc);
  EXPECT_EQ(ReadCounter(merged, 1)->value, 101);
  Result<Object> del = ApplyWrite(*base, base->clock, "a", NewVersion{true, "", 0, 1}, kLimits);
  Object after_del = Merge(*del, *inc);
  EXPECT_EQ(ReadCounter(after_del, 1)->value, 1);  // the concurrent INCR on top of 0
}

TEST(Counter, EncodingRoundTripsAndIsFormat2) {
  int64_t five = 5;
  Result<Object> r = ApplyWrite(Object(), VClock(), "a", NewVersion{}, kLimits, &five);
  r = ApplyWrite(*r, r->clock, "b", NewVersion{false, "7", 0, 1}, kLimits);
  std::string bytes = wire::EncodeObject(*r);
  EXPECT_EQ(static_cast<uint8_t>(bytes[1]), 2);  // [2, ...]: format 2
  Result<Object> back = wire::DecodeObject(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, *r);
  Result<Object> plain = ApplyWrite(Object(), VClock(), "a", NewVersion{false, "x", 0, 1}, kLimits);
  EXPECT_EQ(static_cast<uint8_t>(wire::EncodeObject(*plain)[1]), 1);
  // A malformed state (unsorted shards) is refused.
  r->siblings.back().counter->shards = {{"b", 1, 1}, {"a", 1, 1}};
  EXPECT_FALSE(wire::DecodeObject(wire::EncodeObject(*r)).ok());
}

}  // namespace
}  // namespace itsuka::core
