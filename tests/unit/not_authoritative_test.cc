// A node whose copy of a partition is not authoritative (LocalStore::Authoritative:
// it lost data) gives no votes from it, and a failed commit answers the writes it
// staged as not applied.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "core/node_core.h"
#include "map_store.h"

namespace itsuka::core {
namespace {

// Objects in maps; no Paxos state is ever read back; every key's partition is
// authoritative or not, as `authoritative` says.
class SuspectStore : public MapStore {
 public:
  Result<AcceptorState> ReadPaxos(std::string_view) override { return AcceptorState(); }
  bool Authoritative(std::string_view) const override { return authoritative; }
  bool authoritative = false;
};

Object Value(const std::string& v, const std::string& actor) {
  return ApplyWrite(Object(), VClock(), actor, NewVersion{false, v, 0, 1}, ObjectLimits{}).value();
}

struct TestNode {
  TestNode() : core("a", store, NodeOptions{}) {
    core.SetRing(Ring::Create(16, {"a", "b", "c"}, 1).value());
  }
  SuspectStore store;
  NodeCore core;
};

template <typename T>
std::vector<std::pair<std::string, T>> SendsOf(const Outbox& out) {
  std::vector<std::pair<std::string, T>> v;
  for (const auto& [to, msg] : out.sends) {
    if (const T* m = std::get_if<T>(&msg)) v.emplace_back(to, *m);
  }
  return v;
}

TEST(NotAuthoritative, ItsOwnCopyDoesNotAnswerAReadAlone) {
  TestNode t;
  t.store.data["k"] = Object();  // lost: the others hold a value
  t.core.StartGet(1, "k", 1, 0, 0);
  Outbox out = t.core.TakeOutbox();
  EXPECT_TRUE(out.results.empty());  // R=1 is not met by the copy here
  auto reads = SendsOf<ReplicaRead>(out);
  ASSERT_EQ(reads.size(), 2u);
  t.core.OnMessage(reads[0].first, ReplicaReadReply{reads[0].second.req_id, true, Value("v", "b"), ""}, 1);
  out = t.core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  ASSERT_TRUE(out.results[0].status.ok());
  ASSERT_EQ(out.results[0].object.siblings.size(), 1u);
  EXPECT_EQ(out.results[0].object.siblings[0].value, "v");
}

TEST(NotAuthoritative, RAllCannotBeMetWithItsVote) {
  TestNode t;
  t.core.StartGet(1, "k", 3, 0, 0);  // R=all: refused at once, not answered stale
  Outbox out = t.core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].status.code(), Status::Code::kUnavailable);
}

TEST(NotAuthoritative, PrCountsOnlyTheOtherPrimaries) {
  TestNode t;
  t.core.StartGet(1, "k", 2, 2, 0);  // R=2, PR=2
  Outbox out = t.core.TakeOutbox();
  EXPECT_TRUE(out.results.empty());
  auto reads = SendsOf<ReplicaRead>(out);
  ASSERT_EQ(reads.size(), 2u);
  t.core.OnMessage(reads[0].first, ReplicaReadReply{reads[0].second.req_id, true, Value("v", "b"), ""}, 1);
  EXPECT_TRUE(t.core.TakeOutbox().results.empty());  // one vote so far
  t.core.OnMessage(reads[1].first, ReplicaReadReply{reads[1].second.req_id, true, Value("v", "b"), ""}, 1);
  out = t.core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_TRUE(out.results[0].status.ok());
}

TEST(NotAuthoritative, AsAReplicaItAnswersReadsWithoutAVoteButWithItsObject) {
  TestNode t;
  t.store.data["k"] = Value("mine", "a");
  t.core.OnMessage("b", ReplicaRead{7, "k"}, 0);
  auto replies = SendsOf<ReplicaReadReply>(t.core.TakeOutbox());
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].second.ok);
  EXPECT_NE(replies[0].second.error.find("not authoritative"), std::string::npos);
  ASSERT_EQ(replies[0].second.object.siblings.size(), 1u);  // merged by the coordinator
  // ... which merges it without counting it.
  GetCoordinator g({Target{"a", true, {}}, Target{"b", true, {}}}, 1, 0, 100);
  EXPECT_EQ(g.OnReply("a", false, replies[0].second.object), Outcome::kPending);
  EXPECT_EQ(g.OnReply("b", true, Value("theirs", "b")), Outcome::kOk);
  EXPECT_EQ(g.merged().siblings.size(), 2u);
}

TEST(NotAuthoritative, ItIsNoPaxosAcceptor) {
  TestNode t;
  t.core.OnMessage("b", PaxosPrepare{9, "k", Ballot{5, "b"}}, 0);
  auto promises = SendsOf<PaxosPromise>(t.core.TakeOutbox());
  ASSERT_EQ(promises.size(), 1u);
  EXPECT_FALSE(promises[0].second.ok);
  EXPECT_NE(promises[0].second.error.find("not authoritative"), std::string::npos);
  t.core.OnMessage("b", PaxosAccept{10, "k", Ballot{5, "b"}, Value("v", "b")}, 0);
  auto accepted = SendsOf<PaxosAccepted>(t.core.TakeOutbox());
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_FALSE(accepted[0].second.ok);
}

TEST(NotAuthoritative, AWriteThroughItIsHandedToAnotherPrimary) {
  TestNode t;
  t.core.StartPut(1, "k", WriteSpec{NewVersion{false, "v", 0, 1}}, 2, 0, 0);
  Outbox out = t.core.TakeOutbox();
  EXPECT_EQ(SendsOf<ForwardPut>(out).size(), 1u);
  EXPECT_TRUE(t.store.data.empty());  // no dot was issued from the copy here
}

TEST(NotAuthoritative, AloneItReadsTheOthersBeforeIssuingADot) {
  TestNode t;
  t.core.SetReachable("c", false);
  // b is the only other primary; it coordinates via a forward. With b down too:
  t.core.SetReachable("b", false);
  t.core.StartPut(1, "k", WriteSpec{NewVersion{false, "v", 0, 1}}, 1, 0, 0);
  Outbox out = t.core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  // The read before the write cannot be met without a vote from here: not applied.
  EXPECT_EQ(out.results[0].status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(t.store.data.empty());
}

TEST(CommitFailure, WritesStagedInTheFailedRoundAreAnsweredNotApplied) {
  TestNode t;
  t.store.authoritative = true;
  t.core.StartPut(1, "k", WriteSpec{NewVersion{false, "v", 0, 1}}, 2, 0, 0);  // waits for an ack
  t.core.StartPut(2, "j", WriteSpec{NewVersion{false, "v", 0, 1}}, 1, 0, 0);  // answered at once
  Outbox out = t.core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].client_req, 2u);
  EXPECT_EQ(out.results[0].on_commit_failure, ClientResult::OnCommitFailure::kNotApplied);
  t.core.CommitFailed(Status::IOError("disk full: not applied"));
  out = t.core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].client_req, 1u);
  EXPECT_EQ(out.results[0].status.code(), Status::Code::kIOError);
  EXPECT_EQ(t.core.inflight(), 0u);
  // A write staged in an earlier round stands when a later commit fails.
  t.core.StartPut(3, "m", WriteSpec{NewVersion{false, "v", 0, 1}}, 2, 0, 0);
  auto writes = SendsOf<ReplicaWrite>(t.core.TakeOutbox());
  ASSERT_FALSE(writes.empty());
  t.core.OnMessage(writes[0].first, ReplicaWriteAck{writes[0].second.req_id, true, ""}, 1);
  out = t.core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_TRUE(out.results[0].status.ok());
  EXPECT_EQ(out.results[0].on_commit_failure, ClientResult::OnCommitFailure::kStands);
  t.core.CommitFailed(Status::IOError("disk full"));
  EXPECT_TRUE(t.core.TakeOutbox().results.empty());
}

}  // namespace
}  // namespace itsuka::core
