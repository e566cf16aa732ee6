// Copy planning under a stale view: a node's own read ring may still list it for a
// partition that a transition completed elsewhere has already taken from it.
#include <gtest/gtest.h>

#include "core/node_core.h"
#include "server/store.h"
#include "storage/mem_engine.h"

namespace itsuka {
namespace {

bool Owns(const core::Ring& r, uint32_t p, const std::string& node) {
  std::vector<std::string> l = r.PreferenceList(p, 2);
  return std::find(l.begin(), l.end(), node) != l.end();
}

// b holds data in {a,b,c}; d joins ({a,b,c,d}) and b syncs to it, losing partitions to
// d. Once that join completes elsewhere, writes to those partitions stop reaching b. b
// then learns of a's decommission before it learns the join completed: its read ring is
// still {a,b,c} (listing b for those partitions), its write ring {b,c,d}. The partitions
// that ring gives back to b must be copied, not assumed held.
TEST(CopyPlan, StaleReadRingDoesNotCountAsHeld) {
  storage::MemEngine engine;
  server::Store store(engine, false);
  core::NodeOptions o;
  o.n = 2;
  core::NodeCore b("b", store, o);
  const core::Ring r0 = core::Ring::Create(16, {"a", "b", "c"}, 1).value();
  const core::Ring w1 = core::Ring::Create(16, {"a", "b", "c", "d"}, 2).value();
  const core::Ring w2 = core::Ring::Create(16, {"b", "c", "d"}, 3).value();
  b.SetRings(r0, r0, 1);
  ASSERT_EQ(b.Synced(), 1u);
  b.SetRings(r0, w1, 2);
  ASSERT_EQ(b.Synced(), 2u);  // a join only takes partitions away: nothing to copy
  size_t given_back = 0, gained = 0;
  for (uint32_t p = 0; p < 16; ++p) {
    if (!Owns(w2, p, "b") || Owns(w1, p, "b")) continue;
    ++gained;
    if (Owns(r0, p, "b")) ++given_back;
  }
  ASSERT_GT(given_back, 0u) << "the rings no longer exercise the case";
  b.SetRings(r0, w2, 3);
  EXPECT_NE(b.Synced(), 3u);
  // Each gained partition is copied from its read-ring replicas other than b.
  size_t planned = 0;
  for (uint32_t p = 0; p < 16; ++p) {
    if (!Owns(w2, p, "b") || Owns(w1, p, "b")) continue;
    planned += Owns(r0, p, "b") ? 1 : 2;
  }
  EXPECT_EQ(b.TransfersPending(), planned);
  EXPECT_GE(planned, gained);
}

// A node that never synced trusts its read ring (a static ring, or a restart).
TEST(CopyPlan, FirstRingIsTrusted) {
  storage::MemEngine engine;
  server::Store store(engine, false);
  core::NodeOptions o;
  o.n = 2;
  core::NodeCore b("b", store, o);
  const core::Ring r = core::Ring::Create(16, {"a", "b", "c"}, 1).value();
  b.SetRings(r, r, 5);
  EXPECT_EQ(b.Synced(), 5u);
  EXPECT_EQ(b.TransfersPending(), 0u);
}

}  // namespace
}  // namespace itsuka
