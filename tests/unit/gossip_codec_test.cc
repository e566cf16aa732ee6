// Round trips and bad input for the gossip and partition-transfer peer messages (50-59).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>

#include "wire/peer_codec.h"

namespace itsuka::wire {
namespace {

core::View SomeView() {
  core::View v;
  core::MemberState a;
  a.id = "node1";
  a.incarnation = 3;
  a.heartbeat = 99;
  a.client_addr = "127.0.0.1:7001";
  a.peer_addr = "127.0.0.1:17001";
  a.synced = 0xdeadbeefcafeull;
  a.version = 2;
  a.status = core::MemberStatus::kUp;
  a.seen = 0x1234;
  core::MemberState b = a;
  b.id = "node4";
  b.status = core::MemberStatus::kLeaving;
  v[a.id] = a;
  v[b.id] = b;
  return v;
}

core::Object SomeObject() {
  return core::ApplyWrite(core::Object(), core::VClock(), "n1",
                          core::NewVersion{false, std::string("v\0x", 3), 0, 7}, core::ObjectLimits{})
      .value();
}

std::vector<core::PeerMessage> Samples() {
  return {core::GossipSyn{SomeView()},
          core::GossipAck{SomeView()},
          core::GossipSyn{core::View{}},
          core::TransferRequest{5, 256, {0, 7, 255}, std::string("k\0", 2), 256},
          core::TransferRequest{6, 16, {}, "", 1},
          core::TransferBatch{5, true, "", {{"a", SomeObject()}, {std::string("b\0", 2), SomeObject()}}, "b\x01", false},
          core::TransferBatch{6, false, "ring has 16 partitions, not 256", {}, "", false},
          core::TransferBatch{7, true, "", {}, "", true},
          core::TransferBatch{8, true, "", {{"a", SomeObject()}}, "c", false,
                          {{"a", core::Ballot{4, "n2.x"}, core::Ballot{3, "n1.y"}, SomeObject()},
                           {std::string("b\0", 2), core::Ballot{1, "n1"}, core::Ballot{}, core::Object()}}}};
}

TEST(GossipCodec, RoundTripsEveryMessage) {
  for (const core::PeerMessage& m : Samples()) {
    Result<core::PeerMessage> back = DecodePeerMessage(EncodePeerMessage(m));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, m) << "type " << m.index();
  }
}

TEST(GossipCodec, RefusesBadFields) {
  // A partition outside the ring.
  std::string bytes = EncodePeerMessage(core::TransferRequest{1, 4, {4}, "", 1});
  EXPECT_FALSE(DecodePeerMessage(bytes).ok());
  // Paxos state in a transfer: accepted above promised, or a zero ballot with a node.
  for (const core::KeyPaxosState& st :
       {core::KeyPaxosState{"k", core::Ballot{2, "a"}, core::Ballot{3, "a"}, SomeObject()},
        core::KeyPaxosState{"k", core::Ballot{0, "a"}, core::Ballot{}, core::Object()}}) {
    EXPECT_FALSE(DecodePeerMessage(EncodePeerMessage(core::TransferBatch{1, true, "", {}, "", true, {st}})).ok());
  }
  // A status past kLeft.
  core::View v = SomeView();
  v.begin()->second.status = static_cast<core::MemberStatus>(9);
  EXPECT_FALSE(DecodePeerMessage(EncodePeerMessage(core::GossipSyn{v})).ok());
  // An empty member id.
  core::View e;
  e[""] = core::MemberState{};
  EXPECT_FALSE(DecodePeerMessage(EncodePeerMessage(core::GossipAck{e})).ok());
  // A duplicate member (two entries, same id): hand-made msgpack.
  // [50, [[id,1,1,"","",0,0,1,0],[id,1,1,"","",0,0,1,0]]]
  const std::string member("\x99\xa1x\x01\x01\xa0\xa0\x00\x00\x01\x00", 11);
  std::string dup = std::string("\x92\x32\x92", 3) + member + member;
  EXPECT_FALSE(DecodePeerMessage(dup).ok());
  std::string one = std::string("\x92\x32\x91", 3) + member;
  EXPECT_TRUE(DecodePeerMessage(one).ok());
}

TEST(GossipCodec, MutatedBytesNeverCrash) {
  std::mt19937 rng(29);
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
    Result<core::PeerMessage> m = DecodePeerMessage(bytes);
    if (m.ok()) {
      ++decoded;
      Result<core::PeerMessage> again = DecodePeerMessage(EncodePeerMessage(*m));
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(*again, *m);
    }
  }
  EXPECT_LT(decoded, 5000);
}

// The fuzz corpus holds one encoded sample of each type (tests/fuzz/corpus/peer/gossip-*);
// they must stay decodable.
TEST(GossipCodec, FuzzCorpusSeedsDecode) {
  for (int i = 0; i < 4; ++i) {
    std::ifstream in(std::string(ITSUKA_SOURCE_DIR) + "/tests/fuzz/corpus/peer/gossip-" +
                     std::to_string(50 + i), std::ios::binary);
    ASSERT_TRUE(in.good()) << i;
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Result<core::PeerMessage> m = DecodePeerMessage(bytes);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
  }
}

}  // namespace
}  // namespace itsuka::wire
