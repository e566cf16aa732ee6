#include "core/quorum.h"

#include <gtest/gtest.h>

namespace itsuka::core {
namespace {

std::vector<Target> Primaries(std::vector<std::string> nodes) {
  std::vector<Target> t;
  for (auto& n : nodes) t.push_back(Target{n, true, {}});
  return t;
}

Object Obj(const std::string& node, const std::string& v, const VClock& ctx = VClock()) {
  return ApplyWrite(Object(), ctx, node, NewVersion{false, v, 0, 0}, ObjectLimits{}).value();
}

TEST(ParseQuorum, NamesAndNumbers) {
  EXPECT_EQ(*ParseQuorum("one", 3), 1);
  EXPECT_EQ(*ParseQuorum("QUORUM", 3), 2);
  EXPECT_EQ(*ParseQuorum("quorum", 5), 3);
  EXPECT_EQ(*ParseQuorum("all", 3), 3);
  EXPECT_EQ(*ParseQuorum("2", 3), 2);
  for (const char* bad : {"0", "4", "-1", "two", "", "2x"}) {
    EXPECT_FALSE(ParseQuorum(bad, 3).ok()) << bad;
  }
}

TEST(PickTargets, SloppySubstitutesStandInForDownPrimaries) {
  auto t = PickTargets({"a", "b", "c"}, {"d", "e"}, {true, false, true}, {false, true}, true);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[1].node, "e");
  EXPECT_FALSE(t[1].primary);
  EXPECT_EQ(t[1].hint_for, "b");
  auto strict = PickTargets({"a", "b", "c"}, {"d"}, {true, false, true}, {true}, false);
  EXPECT_EQ(strict.size(), 2u);
}

TEST(PutCoordinator, OkAfterWAcks) {
  PutCoordinator p(Primaries({"a", "b", "c"}), 2, 0, 1000);
  EXPECT_EQ(p.Check(), Outcome::kPending);
  EXPECT_EQ(p.OnAck("a", true), Outcome::kPending);
  EXPECT_EQ(p.OnAck("a", true), Outcome::kPending);  // duplicate ignored
  EXPECT_EQ(p.OnAck("zz", true), Outcome::kPending);  // unknown ignored
  EXPECT_EQ(p.OnAck("c", true), Outcome::kOk);
  EXPECT_TRUE(p.ToStatus().ok());
}

TEST(PutCoordinator, UnavailableBeforeSendingWhenTooFewReachable) {
  PutCoordinator p(Primaries({"a"}), 2, 0, 1000);
  EXPECT_EQ(p.Check(), Outcome::kUnavailable);
  EXPECT_EQ(p.ToStatus().code(), Status::Code::kUnavailable);
  EXPECT_EQ(p.ToStatus().message(), "need 2 replicas, 1 reachable");
  std::vector<Target> t = Primaries({"a"});
  t.push_back(Target{"x", false, "b"});
  PutCoordinator strict(t, 2, 2, 1000);
  EXPECT_EQ(strict.Check(), Outcome::kUnavailable);  // PW counts primaries only
}

TEST(PutCoordinator, TimeoutMeansOutcomeUnknown) {
  PutCoordinator p(Primaries({"a", "b", "c"}), 2, 0, 1000);
  p.Check();
  p.OnAck("a", true);
  EXPECT_EQ(p.OnTime(999), Outcome::kPending);
  EXPECT_EQ(p.OnTime(1000), Outcome::kTimeout);
  EXPECT_EQ(p.ToStatus().code(), Status::Code::kTimeout);
  EXPECT_EQ(p.ToStatus().message(), "1 of 2 acks (outcome unknown)");
  EXPECT_EQ(p.OnAck("b", true), Outcome::kTimeout);  // final once decided
}

TEST(PutCoordinator, FailuresThatMakeWImpossibleEndEarly) {
  PutCoordinator p(Primaries({"a", "b", "c"}), 3, 0, 1000);
  p.Check();
  p.OnAck("a", true);
  EXPECT_EQ(p.OnAck("b", false), Outcome::kTimeout);
}

TEST(PutCoordinator, PwCountsOnlyPrimaries) {
  std::vector<Target> t = Primaries({"a", "b"});
  t.push_back(Target{"x", false, "c"});
  PutCoordinator p(t, 2, 2, 1000);
  ASSERT_EQ(p.Check(), Outcome::kPending);
  p.OnAck("a", true);
  EXPECT_EQ(p.OnAck("x", true), Outcome::kPending);  // W met, PW not
  EXPECT_EQ(p.OnAck("b", true), Outcome::kOk);
}

TEST(GetCoordinator, MergesRepliesAndFindsStaleReplicas) {
  Object old_v = Obj("a", "old");
  Object new_v = ApplyWrite(old_v, old_v.clock, "a", NewVersion{false, "new", 0, 0}, ObjectLimits{}).value();
  GetCoordinator g(Primaries({"a", "b", "c"}), 2, 0, 1000);
  ASSERT_EQ(g.Check(), Outcome::kPending);
  EXPECT_EQ(g.OnReply("b", true, old_v), Outcome::kPending);
  EXPECT_EQ(g.OnReply("a", true, new_v), Outcome::kOk);
  EXPECT_EQ(g.merged(), new_v);
  EXPECT_FALSE(g.done());
  g.OnReply("c", true, Object());  // c has nothing
  ASSERT_TRUE(g.done());
  EXPECT_EQ(g.StaleReplicas(), (std::vector<std::string>{"b", "c"}));
}

TEST(GetCoordinator, ConcurrentRepliesBecomeSiblings) {
  GetCoordinator g(Primaries({"a", "b"}), 2, 0, 1000);
  g.Check();
  g.OnReply("a", true, Obj("a", "x"));
  g.OnReply("b", true, Obj("b", "y"));
  EXPECT_EQ(g.merged().siblings.size(), 2u);
}

TEST(GetCoordinator, UnavailableAndTimeout) {
  GetCoordinator g(Primaries({"a"}), 2, 0, 1000);
  EXPECT_EQ(g.Check(), Outcome::kUnavailable);
  GetCoordinator h(Primaries({"a", "b", "c"}), 3, 0, 1000);
  h.Check();
  h.OnReply("a", true, Object());
  EXPECT_EQ(h.OnTime(1000), Outcome::kTimeout);
  EXPECT_TRUE(h.done());
  GetCoordinator f(Primaries({"a", "b"}), 2, 0, 1000);
  f.Check();
  EXPECT_EQ(f.OnReply("a", false, Object()), Outcome::kUnavailable);
}

}  // namespace
}  // namespace itsuka::core
