#include "wire/peer_codec.h"

#include <gtest/gtest.h>

#include <random>

namespace itsuka::wire {
namespace {

core::Object SomeObject() {
  core::Object o = core::ApplyWrite(core::Object(), core::VClock(), "n1",
                                    core::NewVersion{false, "v\0x", 0, 7}, core::ObjectLimits{})
                       .value();
  return core::ApplyWrite(o, core::VClock(), "n2", core::NewVersion{true, "", 0, 8},
                          core::ObjectLimits{})
      .value();
}

std::vector<core::PeerMessage> Samples() {
  return {core::Hello{"itsuka", 1, "node1"},
          core::ReplicaWrite{42, std::string("k\0\r\n", 4), SomeObject(), "node3"},
          core::ReplicaWrite{0, "repair", core::Object(), ""},
          core::ReplicaWriteAck{42, true, ""},
          core::ReplicaWriteAck{43, false, "TOOBIG object too big"},
          core::ReplicaRead{7, "key"},
          core::ReplicaReadReply{7, true, SomeObject(), ""},
          core::ReplicaReadReply{8, false, core::Object(), "storage error"},
          core::ForwardPut{9, "fk",
                           core::WriteSpec{core::NewVersion{false, "val", 1234, 99}, true,
                                           SomeObject().clock, core::WriteSpec::Cond::kNx, true},
                           2, 1},
          core::ForwardPut{10, "del", core::WriteSpec{core::NewVersion{true, "", 0, 5}}, 3, 0},
          core::ForwardResult{9, 5, "need 2 replicas, 1 reachable", false},
          core::ForwardResult{10, 0, "", true},
          core::Heartbeat{}};
}

TEST(PeerCodec, RoundTripsEveryMessage) {
  for (const core::PeerMessage& m : Samples()) {
    Result<core::PeerMessage> back = DecodePeerMessage(EncodePeerMessage(m));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, m) << "type " << m.index();
  }
}

TEST(PeerCodec, MutatedBytesNeverCrash) {
  std::mt19937 rng(13);
  std::vector<core::PeerMessage> samples = Samples();
  int decoded = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = EncodePeerMessage(samples[rng() % samples.size()]);
    size_t pos = rng() % bytes.size();
    if (rng() % 2) {
      bytes[pos] = static_cast<char>(rng());
    } else {
      bytes.resize(pos);
    }
    if (DecodePeerMessage(bytes).ok()) ++decoded;
  }
  EXPECT_LT(decoded, 5000);  // most mutations are caught; none crashed
  EXPECT_FALSE(DecodePeerMessage("").ok());
  EXPECT_FALSE(DecodePeerMessage("\x91\x09").ok());  // unknown type
  EXPECT_FALSE(DecodePeerMessage("\x92\x07\x01").ok());  // heartbeat with a field
}


// A sibling with a negative expiry: the object check refuses it. Today's main decoded a
// ForwardPut carrying one and stored it (the key became unreadable everywhere).
core::Object PoisonedObject() {
  core::Object o = SomeObject();
  o.siblings[0].expire_at_ms = -1;
  return o;
}

// An object whose clock and dot carry an absurd counter (2^63).
core::Object AbsurdClockObject() {
  core::Object o;
  o.clock = core::VClock({{"evil", uint64_t{1} << 63}});
  o.siblings.push_back(core::Sibling{core::Dot{"evil", uint64_t{1} << 63}, false, "x", 0, 1});
  return o;
}

Status::Code CodeOf(const core::PeerMessage& m, PeerRefusal* refusal = nullptr) {
  return DecodePeerMessage(EncodePeerMessage(m), refusal).status().code();
}

TEST(PeerCodecRefusals, NegativeExpiryInAForwardedPutIsRefusedNotStored) {
  core::ForwardPut put{9, "k", core::WriteSpec{core::NewVersion{false, "v", -5, 1}}, 2, 1};
  PeerRefusal refusal;
  EXPECT_EQ(CodeOf(put, &refusal), Status::Code::kInvalidArgument);
  EXPECT_EQ(refusal.type, 5u);
  EXPECT_EQ(refusal.req_id, 9u);  // so the coordinator can be answered with an error
  ASSERT_TRUE(refusal.decoded);
  EXPECT_TRUE(std::holds_alternative<core::ForwardPut>(refusal.message));
  core::ForwardConsistent fc{3, "k", false, core::WriteSpec{core::NewVersion{false, "v", -1, 1}}};
  EXPECT_EQ(CodeOf(fc), Status::Code::kInvalidArgument);
  core::ForwardPut bad_time{9, "k", core::WriteSpec{core::NewVersion{false, "v", 0, -1}}, 2, 1};
  EXPECT_EQ(CodeOf(bad_time), Status::Code::kInvalidArgument);
}

TEST(PeerCodecRefusals, PoisonedObjectIsARefusedValueNotAFramingError) {
  // Today's main: kCorruption, and the transport dropped the whole connection.
  PeerRefusal refusal;
  EXPECT_EQ(CodeOf(core::ReplicaWrite{77, "k", PoisonedObject(), ""}, &refusal),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(refusal.req_id, 77u);
  EXPECT_TRUE(refusal.decoded);
  EXPECT_EQ(CodeOf(core::ReplicaReadReply{5, true, PoisonedObject(), ""}),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(CodeOf(core::PushRequest{6, {core::KeyObject{"k", PoisonedObject()}}}),
            Status::Code::kInvalidArgument);
}

TEST(PeerCodecRefusals, AbsurdClockCountersAreRefused) {
  EXPECT_EQ(CodeOf(core::ReplicaWrite{1, "k", AbsurdClockObject(), ""}),
            Status::Code::kInvalidArgument);
  core::ForwardPut put{9, "k", core::WriteSpec{core::NewVersion{false, "v", 0, 1}, true,
                                               core::VClock({{"n1", ~uint64_t{0}}})},
                       2, 1};
  EXPECT_EQ(CodeOf(put), Status::Code::kInvalidArgument);
  // 2^53 itself is the largest counter accepted.
  put.spec.context = core::VClock({{"n1", core::kMaxClockCounter}});
  EXPECT_TRUE(DecodePeerMessage(EncodePeerMessage(put)).ok());
  core::PaxosPrepare prep{4, "k", core::Ballot{uint64_t{1} << 63, "n1.x"}};
  EXPECT_EQ(CodeOf(prep), Status::Code::kInvalidArgument);
}

TEST(PeerCodecRefusals, EmptyAndOversizedNodeIdsInClocksAreRefused) {
  core::Object o;
  o.clock = core::VClock({{"", 1}});
  EXPECT_EQ(CodeOf(core::ReplicaWrite{1, "k", o, ""}), Status::Code::kInvalidArgument);
  o.clock = core::VClock({{std::string(300, 'a'), 1}});
  EXPECT_EQ(CodeOf(core::ReplicaWrite{1, "k", o, ""}), Status::Code::kInvalidArgument);
}

TEST(PeerCodecRefusals, AbsurdGossipCountersAndOtherValueBounds) {
  core::View view;
  core::MemberState m;
  m.id = "n2";
  m.heartbeat = uint64_t{1} << 63;
  view["n2"] = m;
  EXPECT_EQ(CodeOf(core::GossipSyn{view}), Status::Code::kInvalidArgument);
  view["n2"].heartbeat = 10;
  view["n2"].version = uint64_t{1} << 62;
  EXPECT_EQ(CodeOf(core::GossipAck{view}), Status::Code::kInvalidArgument);
  core::TombstoneRequest t;
  t.req_id = 3;
  t.grace_ms = -1;
  EXPECT_EQ(CodeOf(t), Status::Code::kInvalidArgument);
  core::ForwardPut w0{9, "k", core::WriteSpec{core::NewVersion{false, "v", 0, 1}}, 0, 0};
  EXPECT_EQ(CodeOf(w0), Status::Code::kInvalidArgument);
}

TEST(PeerCodecRefusals, FramingErrorsStayCorruption) {
  EXPECT_EQ(DecodePeerMessage("").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(DecodePeerMessage("\xc1").status().code(), Status::Code::kCorruption);
  // A ReplicaWrite with a missing field: the layout is wrong.
  EXPECT_EQ(DecodePeerMessage("\x93\x01\x05\xa1k").status().code(), Status::Code::kCorruption);
  // An unknown type is refused, not a reason to drop the connection.
  EXPECT_EQ(DecodePeerMessage("\x91\x09").status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace itsuka::wire

namespace itsuka::wire {
namespace {

// A digest match (ReplicaReadReply.same) stands for the asker's own copy: one that
// carries an object, or says it failed, is a refused value.
TEST(PeerCodecRefusals, ADigestMatchWithAnObjectOrAFailureIsRefused) {
  core::ReplicaReadReply r{5, true, SomeObject(), "", 3};
  r.same = true;
  EXPECT_EQ(CodeOf(r), Status::Code::kInvalidArgument);
  r.object = core::Object();
  r.ok = false;
  EXPECT_EQ(CodeOf(r), Status::Code::kInvalidArgument);
  r.ok = true;
  EXPECT_EQ(CodeOf(r), Status::Code::kOk);
}

}  // namespace
}  // namespace itsuka::wire
