// Digest reads (core/reads.h): a coordinator that is a replica with a voting copy
// answers from it and asks the other replicas only whether their copy differs. Three
// NodeCores over MapStores, messages carried by hand.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/merkle.h"
#include "core/node_core.h"
#include "map_store.h"

namespace itsuka::core {
namespace {

// A MapStore whose copy may be marked as one this node cannot vouch for.
class FlagStore : public MapStore {
 public:
  bool Authoritative(std::string_view /*key*/) const override { return authoritative; }
  bool authoritative = true;
};

struct Member {
  explicit Member(const std::string& name) : core(name, store, Options()) {
    core.SetRing(Ring::Create(16, {"a", "b", "c"}, 1).value());
  }
  static NodeOptions Options() {
    NodeOptions o;
    o.n = 3;
    return o;
  }
  FlagStore store;
  NodeCore core;
};

Object Written(const Object& base, const std::string& node, const std::string& value,
               bool tombstone = false) {
  return ApplyWrite(base, base.clock, node, NewVersion{tombstone, value, 0, 1}, ObjectLimits{})
      .value();
}

class DigestReads : public ::testing::Test {
 protected:
  DigestReads() {
    for (const char* n : {"a", "b", "c"}) members_.emplace(n, std::make_unique<Member>(n));
  }
  FlagStore& store(const std::string& n) { return members_.at(n)->store; }
  NodeCore& core(const std::string& n) { return members_.at(n)->core; }
  void StoreEverywhere(const std::string& key, const Object& obj) {
    for (auto& [n, m] : members_) m->store.data[key] = obj;
  }
  // Delivers what `from` sent to the replicas, collects their answers, and returns
  // them (not yet delivered back).
  std::vector<std::pair<std::string, ReplicaReadReply>> AskReplicas(const Outbox& out,
                                                                    std::vector<ReplicaRead>* reads) {
    std::vector<std::pair<std::string, ReplicaReadReply>> replies;
    for (const auto& [to, msg] : out.sends) {
      const auto* r = std::get_if<ReplicaRead>(&msg);
      if (r == nullptr) continue;
      if (reads != nullptr) reads->push_back(*r);
      core(to).OnMessage("a", *r, 1);
      for (const auto& [back, reply] : core(to).TakeOutbox().sends) {
        EXPECT_EQ(back, "a");
        replies.emplace_back(to, std::get<ReplicaReadReply>(reply));
      }
    }
    return replies;
  }
  std::map<std::string, std::unique_ptr<Member>> members_;
};

TEST_F(DigestReads, InSyncReplicasAnswerSameWithoutTheObject) {
  const Object v = Written(Object(), "a", "v");
  StoreEverywhere("k", v);
  core("a").StartGet(1, "k", 1, 0, 0);
  Outbox out = core("a").TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);  // R=1: answered from the local copy at once
  EXPECT_TRUE(out.results[0].status.ok());
  EXPECT_EQ(out.results[0].object, v);
  std::vector<ReplicaRead> reads;
  auto replies = AskReplicas(out, &reads);
  ASSERT_EQ(reads.size(), 2u);
  for (const ReplicaRead& r : reads) {
    EXPECT_TRUE(r.digest_only);
    EXPECT_EQ(r.digest, ObjectDigest(v));
  }
  ASSERT_EQ(replies.size(), 2u);
  for (const auto& [from, r] : replies) {
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.same);
    EXPECT_TRUE(r.object.empty());
    core("a").OnMessage(from, r, 2);
  }
  out = core("a").TakeOutbox();
  EXPECT_TRUE(out.sends.empty());  // nothing to repair
  EXPECT_EQ(core("a").inflight(), 0u);
}

TEST_F(DigestReads, AMismatchBringsTheObjectAndIsRepaired) {
  const Object old = Written(Object(), "a", "old");
  const Object newer = Written(old, "b", "new");
  StoreEverywhere("k", old);
  store("b").data["k"] = newer;
  core("a").StartGet(1, "k", 1, 0, 0);
  Outbox out = core("a").TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].object, old);  // R=1: the local copy, before b answered
  for (const auto& [from, r] : AskReplicas(out, nullptr)) {
    EXPECT_EQ(r.same, from == "c");
    if (from == "b") EXPECT_EQ(r.object, newer);
    core("a").OnMessage(from, r, 2);
  }
  out = core("a").TakeOutbox();
  EXPECT_EQ(store("a").data["k"], newer);  // the coordinator's copy was repaired
  ASSERT_EQ(out.sends.size(), 1u);         // and c's; b was current
  EXPECT_EQ(out.sends[0].first, "c");
  EXPECT_EQ(std::get<ReplicaWrite>(out.sends[0].second).object, newer);
}

TEST_F(DigestReads, QuorumReadsCountSameAsTheCoordinatorsCopyAndMergeAMismatch) {
  const Object old = Written(Object(), "a", "old");
  const Object newer = Written(old, "b", "new");
  StoreEverywhere("k", old);
  store("b").data["k"] = newer;
  // R=2 with b first: the answer waits for it and holds b's newer object.
  core("a").StartGet(1, "k", 2, 0, 0);
  Outbox out = core("a").TakeOutbox();
  EXPECT_TRUE(out.results.empty());
  auto replies = AskReplicas(out, nullptr);
  for (const auto& [from, r] : replies) {
    if (from == "b") core("a").OnMessage(from, r, 2);
  }
  out = core("a").TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].object, newer);
  // R=2 with c first: c's `same` is the second answer (a's own copy).
  core("a").StartGet(2, "k", 2, 0, 0);
  out = core("a").TakeOutbox();
  EXPECT_TRUE(out.results.empty());
  replies = AskReplicas(out, nullptr);
  for (const auto& [from, r] : replies) {
    if (from == "c") core("a").OnMessage(from, r, 3);
  }
  out = core("a").TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_TRUE(out.results[0].status.ok());
  EXPECT_EQ(out.results[0].object, store("a").data["k"]);
  // R=3 (all): a failed replica fails the read, a `same` does not stand in for it.
  core("a").StartGet(3, "k", 3, 0, 0);
  out = core("a").TakeOutbox();
  replies = AskReplicas(out, nullptr);
  for (auto& [from, r] : replies) {
    if (from == "b") {
      r = ReplicaReadReply{r.req_id, false, Object(), "storage error"};
    }
    core("a").OnMessage(from, r, 4);
  }
  out = core("a").TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].status.code(), Status::Code::kUnavailable);
}

TEST_F(DigestReads, TombstonesAndExpiriesAreCompared) {
  const Object live = Written(Object(), "a", "v");
  const Object dead = Written(live, "b", "", /*tombstone=*/true);
  StoreEverywhere("k", live);
  store("c").data["k"] = dead;
  core("a").StartGet(1, "k", 1, 0, 0);
  Outbox out = core("a").TakeOutbox();
  for (const auto& [from, r] : AskReplicas(out, nullptr)) {
    EXPECT_EQ(r.same, from == "b");
    core("a").OnMessage(from, r, 2);
  }
  EXPECT_EQ(store("a").data["k"], dead);
  // Same value, another expiry: a different digest.
  Object expiring = live;
  expiring.siblings[0].expire_at_ms = 5000;
  EXPECT_NE(ObjectDigest(expiring), ObjectDigest(live));
}

TEST_F(DigestReads, NoLocalCopyOfTheirOwnSendsDigestOfNothing) {
  const Object v = Written(Object(), "b", "v");
  store("b").data["k"] = v;
  core("a").StartGet(1, "k", 1, 0, 0);
  Outbox out = core("a").TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_TRUE(out.results[0].object.empty());
  std::vector<ReplicaRead> reads;
  for (const auto& [from, r] : AskReplicas(out, &reads)) {
    EXPECT_EQ(r.same, from == "c");  // c has nothing either
    core("a").OnMessage(from, r, 2);
  }
  for (const ReplicaRead& r : reads) EXPECT_EQ(r.digest, 0u);
  EXPECT_EQ(store("a").data["k"], v);
}

TEST_F(DigestReads, ACoordinatorWithoutAVotingCopySendsFullReads) {
  const Object v = Written(Object(), "a", "v");
  StoreEverywhere("k", v);
  store("a").authoritative = false;
  core("a").StartGet(1, "k", 1, 0, 0);
  Outbox out = core("a").TakeOutbox();
  EXPECT_TRUE(out.results.empty());  // its own copy has no vote
  std::vector<ReplicaRead> reads;
  auto replies = AskReplicas(out, &reads);
  ASSERT_EQ(reads.size(), 2u);
  for (const ReplicaRead& r : reads) EXPECT_FALSE(r.digest_only);
  for (const auto& [from, r] : replies) {
    EXPECT_FALSE(r.same);
    EXPECT_EQ(r.object, v);
  }
  // A `same` to a full read (a buggy or forged peer) is no answer: there is no voting
  // copy here it could stand for.
  ReplicaReadReply forged{replies[0].second.req_id, true, Object(), ""};
  forged.same = true;
  core("a").OnMessage(replies[0].first, forged, 2);
  EXPECT_TRUE(core("a").TakeOutbox().results.empty());
  core("a").OnMessage(replies[1].first, replies[1].second, 3);
  out = core("a").TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_TRUE(out.results[0].status.ok());
  EXPECT_EQ(out.results[0].object, v);
}

TEST_F(DigestReads, ANonAuthoritativeReplicaNeverAnswersSame) {
  const Object v = Written(Object(), "a", "v");
  StoreEverywhere("k", v);
  store("b").authoritative = false;
  core("a").StartGet(1, "k", 1, 0, 0);
  Outbox out = core("a").TakeOutbox();
  for (const auto& [from, r] : AskReplicas(out, nullptr)) {
    if (from != "b") continue;
    EXPECT_FALSE(r.same);
    EXPECT_FALSE(r.ok);  // no vote, its object goes along
    EXPECT_EQ(r.object, v);
  }
}

}  // namespace
}  // namespace itsuka::core
