// The acceptor and proposer pieces of per-key Paxos (core/paxos.h), the stored and
// wire encodings of its state and messages, and the store's staging of Paxos state.
// NodeCore's CONSISTENT path is exercised by tests/sim/consistent_sim_test.cc.
#include "core/paxos.h"

#include <gtest/gtest.h>

#include <random>

#include "server/store.h"
#include "storage/mem_engine.h"
#include "wire/paxos_codec.h"
#include "wire/peer_codec.h"

namespace itsuka::core {
namespace {

Object Written(const Object& base, const std::string& actor, const std::string& v) {
  return ApplyWrite(base, base.clock, actor, NewVersion{false, v, 0, 1}, ObjectLimits{}).value();
}

TEST(PaxosAcceptor, PromisesOnlyRisingBallotsAndAcceptsAtOrAbovePromise) {
  AcceptorState s;
  EXPECT_TRUE(AcceptorPrepare(s, Ballot{2, "a"}));
  EXPECT_FALSE(AcceptorPrepare(s, Ballot{1, "z"}));
  EXPECT_FALSE(AcceptorPrepare(s, Ballot{2, "0"}));  // same counter, lower node
  EXPECT_EQ(s.promised, (Ballot{2, "a"}));
  Object v = Written(Object(), "x", "one");
  EXPECT_FALSE(AcceptorAccept(s, Ballot{1, "z"}, v));
  EXPECT_TRUE(s.accepted.IsZero());
  EXPECT_TRUE(AcceptorAccept(s, Ballot{2, "a"}, v));
  EXPECT_EQ(s.accepted, (Ballot{2, "a"}));
  EXPECT_EQ(s.value, v);
  EXPECT_TRUE(AcceptorPrepare(s, Ballot{3, "b"}));
  EXPECT_EQ(s.accepted, (Ballot{2, "a"}));  // a promise keeps what was accepted
}

TEST(PaxosRound, AdoptsTheHighestAcceptedValueNotTheOthers) {
  Object chosen = Written(Object(), "x", "chosen");
  Object failed = Written(Object(), "y", "minority");
  PaxosRound r({"a", "b", "c"}, 2, Ballot{9, "a"});
  EXPECT_EQ(r.OnPromise("a", true, Ballot{9, "a"}, Ballot{3, "b"}, failed, Object()),
            PaxosRound::Phase::kPrepare);
  EXPECT_EQ(r.OnPromise("b", true, Ballot{9, "a"}, Ballot{5, "c"}, chosen, chosen),
            PaxosRound::Phase::kAccept);
  EXPECT_EQ(r.base(), chosen);  // the minority's value is not merged in
  EXPECT_EQ(r.OnAccepted("a", true, Ballot{9, "a"}), PaxosRound::Phase::kAccept);
  EXPECT_EQ(r.OnAccepted("a", true, Ballot{9, "a"}), PaxosRound::Phase::kAccept);  // duplicate
  EXPECT_EQ(r.OnAccepted("b", true, Ballot{9, "a"}), PaxosRound::Phase::kChosen);
}

TEST(PaxosRound, MergesThePromisersDataObjects) {
  Object eventual = Written(Object(), "n1", "eventual");
  PaxosRound r({"a", "b", "c"}, 2, Ballot{1, "a"});
  r.OnPromise("a", true, Ballot{1, "a"}, Ballot{}, Object(), Object());
  r.OnPromise("b", true, Ballot{1, "a"}, Ballot{}, Object(), eventual);
  ASSERT_EQ(r.phase(), PaxosRound::Phase::kAccept);
  EXPECT_EQ(r.base(), eventual);
}

TEST(PaxosRound, FailsOnceAMajorityIsImpossibleAndRemembersHigherBallots) {
  PaxosRound r({"a", "b", "c"}, 2, Ballot{1, "a"});
  r.OnPromise("a", true, Ballot{1, "a"}, Ballot{}, Object(), Object());
  EXPECT_EQ(r.OnPromise("b", false, Ballot{7, "b"}, Ballot{}, Object(), Object()),
            PaxosRound::Phase::kPrepare);
  EXPECT_EQ(r.OnPromise("c", false, Ballot{4, "c"}, Ballot{}, Object(), Object()),
            PaxosRound::Phase::kFailed);
  EXPECT_EQ(r.highest_seen(), 7u);
  // A reply from a node outside the round or for another ballot does not count.
  PaxosRound s({"a", "b", "c"}, 2, Ballot{1, "a"});
  s.OnPromise("zz", true, Ballot{1, "a"}, Ballot{}, Object(), Object());
  s.OnPromise("b", true, Ballot{2, "a"}, Ballot{}, Object(), Object());
  s.OnPromise("a", true, Ballot{1, "a"}, Ballot{}, Object(), Object());
  EXPECT_EQ(s.phase(), PaxosRound::Phase::kPrepare);
}

TEST(PaxosPropose, ConditionsAndCompareAndSet) {
  const Object empty;
  StrongOp nx{false, WriteSpec{NewVersion{false, "v", 0, 1}, false, {}, WriteSpec::Cond::kNx}};
  StrongProposal p = ProposeNext(empty, nx, ObjectLimits{}).value();
  EXPECT_TRUE(p.applied);
  ASSERT_EQ(p.next.siblings.size(), 1u);
  EXPECT_EQ(p.next.siblings[0].dot, (Dot{kStrongActor, 1}));
  EXPECT_FALSE(ProposeNext(p.next, nx, ObjectLimits{}).value().applied);
  // CAS: a context that saw the current version applies, a stale one does not.
  StrongOp cas{false, WriteSpec{NewVersion{false, "w", 0, 2}, true, p.next.clock}};
  StrongProposal q = ProposeNext(p.next, cas, ObjectLimits{}).value();
  EXPECT_TRUE(q.applied);
  EXPECT_EQ(q.next.siblings[0].value, "w");
  EXPECT_EQ(q.next.siblings[0].dot, (Dot{kStrongActor, 2}));  // derived from the agreed clock
  StrongProposal stale = ProposeNext(q.next, cas, ObjectLimits{}).value();
  EXPECT_FALSE(stale.applied);
  EXPECT_EQ(stale.next, q.next);  // a failed condition proposes the object unchanged
  // A read proposes what it found.
  EXPECT_EQ(ProposeNext(q.next, StrongOp{}, ObjectLimits{}).value().next, q.next);
}

TEST(PaxosCodec, MessagesAndStateRoundTrip) {
  Object o = Written(Written(Object(), "n1", "a"), kStrongActor, "b");
  WriteSpec spec{NewVersion{false, "val", 12, 34}, true, o.clock, WriteSpec::Cond::kXx, true};
  std::vector<PeerMessage> msgs = {
      PaxosPrepare{1, "k", Ballot{3, "n1.abc"}},
      PaxosPromise{2, true, Ballot{3, "n1.abc"}, Ballot{2, "n2.x"}, o, o, ""},
      PaxosPromise{3, false, Ballot{9, "n3"}, Ballot{}, Object(), Object(), "IO_ERROR: x"},
      PaxosAccept{4, std::string("k\0y", 3), Ballot{3, "n1"}, o},
      PaxosAccepted{5, false, Ballot{8, "n2"}, ""},
      PaxosCommit{"k", Ballot{3, "n1"}, o},
      ForwardConsistent{6, "k", true, WriteSpec{}},
      ForwardConsistent{7, "k", false, spec},
      ConsistentResult{8, 6, "no majority (outcome unknown)", true, o}};
  for (const PeerMessage& m : msgs) {
    Result<PeerMessage> back = wire::DecodePeerMessage(wire::EncodePeerMessage(m));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, m) << "type " << m.index();
  }
  // A zero counter with a node name is not a ballot.
  PaxosPrepare bad{1, "k", Ballot{0, "n1"}};
  EXPECT_FALSE(wire::DecodePeerMessage(wire::EncodePeerMessage(bad)).ok());

  AcceptorState st{Ballot{5, "n1.x"}, Ballot{4, "n2.y"}, o};
  std::string bytes = wire::EncodeAcceptorState(st);
  EXPECT_EQ(wire::DecodeAcceptorState(bytes).value(), st);
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string b = bytes;
    b[rng() % b.size()] = static_cast<char>(rng());
    if (rng() % 2) b.resize(rng() % b.size());
    (void)wire::DecodeAcceptorState(b);  // an error or a state; never a crash
  }
}

TEST(PaxosStore, StateIsStagedThenCommittedWithTheObjects) {
  storage::MemEngine engine;
  server::Store store(engine, /*sync=*/false);
  EXPECT_EQ(store.ReadPaxos("k").value(), AcceptorState());
  AcceptorState st{Ballot{2, "n"}, Ballot{}, Object()};
  store.StagePaxos("k", st);
  EXPECT_TRUE(store.HasStaged());
  EXPECT_EQ(store.ReadPaxos("k").value(), st);  // read back before the commit
  ASSERT_TRUE(store.Commit().ok());
  server::Store reopened(engine, false);
  EXPECT_EQ(reopened.ReadPaxos("k").value(), st);
  EXPECT_TRUE(reopened.Read("k")->empty());  // the data column is untouched
}

}  // namespace
}  // namespace itsuka::core
