#include "server/peer_auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "wire/peer_codec.h"

namespace itsuka::server {
namespace {

ProofInput Input() {
  return ProofInput{std::string(16, 'c'), "node1", "node2", std::string(32, 'i'),
                    std::string(32, 'a')};
}

const std::string kSecret(32, 's');

TEST(PeerAuth, ProofVerifiesOnlyWithTheSameSecretRoleAndNonces) {
  const ProofInput in = Input();
  const std::string mac = ComputeProof(kSecret, ProofRole::kInitiator, in);
  EXPECT_EQ(mac.size(), 32u);
  EXPECT_TRUE(VerifyProof({kSecret}, {mac}, ProofRole::kInitiator, in));
  // Wrong secret.
  EXPECT_FALSE(VerifyProof({std::string(32, 't')}, {mac}, ProofRole::kInitiator, in));
  // Swapped role: the acceptor's proof never passes as the initiator's.
  EXPECT_FALSE(VerifyProof({kSecret}, {mac}, ProofRole::kAcceptor, in));
  // Another nonce on either side (a replayed proof).
  ProofInput other = in;
  other.acceptor_nonce[0] ^= 1;
  EXPECT_FALSE(VerifyProof({kSecret}, {mac}, ProofRole::kInitiator, other));
  other = in;
  other.initiator_nonce[31] ^= 1;
  EXPECT_FALSE(VerifyProof({kSecret}, {mac}, ProofRole::kInitiator, other));
  // Swapped node ids, another cluster id.
  other = in;
  std::swap(other.initiator_id, other.acceptor_id);
  EXPECT_FALSE(VerifyProof({kSecret}, {mac}, ProofRole::kInitiator, other));
  other = in;
  other.cluster_id[0] = 'd';
  EXPECT_FALSE(VerifyProof({kSecret}, {mac}, ProofRole::kInitiator, other));
  // Field boundaries are unambiguous: moving a byte from one id to the next changes it.
  other = in;
  other.initiator_id = "node1n";
  other.acceptor_id = "ode2";
  EXPECT_FALSE(VerifyProof({kSecret}, {mac}, ProofRole::kInitiator, other));
  // Empty, truncated or garbage proofs fail.
  EXPECT_FALSE(VerifyProof({kSecret}, {}, ProofRole::kInitiator, in));
  EXPECT_FALSE(VerifyProof({kSecret}, {""}, ProofRole::kInitiator, in));
  EXPECT_FALSE(VerifyProof({kSecret}, {mac.substr(0, 16)}, ProofRole::kInitiator, in));
  EXPECT_FALSE(VerifyProof({}, {mac}, ProofRole::kInitiator, in));
}

TEST(PeerAuth, RotationOverlapVerifiesEitherSecret) {
  const ProofInput in = Input();
  const std::string old_secret(32, 'o'), new_secret(40, 'n');
  // A node holding both proves with both; a node holding only one accepts it.
  std::vector<std::string> both = ComputeProofs({old_secret, new_secret}, ProofRole::kAcceptor, in);
  EXPECT_TRUE(VerifyProof({old_secret}, both, ProofRole::kAcceptor, in));
  EXPECT_TRUE(VerifyProof({new_secret}, both, ProofRole::kAcceptor, in));
  std::vector<std::string> only_new = ComputeProofs({new_secret}, ProofRole::kAcceptor, in);
  EXPECT_TRUE(VerifyProof({old_secret, new_secret}, only_new, ProofRole::kAcceptor, in));
  EXPECT_FALSE(VerifyProof({old_secret}, only_new, ProofRole::kAcceptor, in));
}

TEST(PeerAuth, SecretFileRoundTripsAndRefusesBadText) {
  Result<ClusterSecret> s = GenerateSecret();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->cluster_id.size(), kClusterIdBytes);
  ASSERT_EQ(s->secrets.size(), 1u);
  EXPECT_EQ(s->secrets[0].size(), kMinSecretBytes);
  Result<ClusterSecret> back = ParseSecretText(FormatSecretFile(*s), "f");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->cluster_id, s->cluster_id);
  EXPECT_EQ(back->secrets, s->secrets);
  // Two generated secrets differ (same cluster id when asked for it).
  Result<ClusterSecret> rotated = GenerateSecret(s->cluster_id);
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(rotated->cluster_id, s->cluster_id);
  EXPECT_NE(rotated->secrets[0], s->secrets[0]);

  const std::string id = "cluster-id " + std::string(32, 'a') + "\n";
  const std::string secret = "secret " + std::string(64, 'b') + "\n";
  struct Bad {
    std::string text, mention;
  };
  for (const Bad& bad : {Bad{secret, "no cluster-id"}, Bad{id, "no secret"},
                         Bad{id + "secret " + std::string(62, 'b') + "\n", "too short"},
                         Bad{id + "secret xyz\n", "not hex"},
                         Bad{"cluster-id abc\n" + secret, "cluster-id must be"},
                         Bad{id + id + secret, "second cluster-id"},
                         Bad{id + secret + "password hunter2\n", "f:3: unknown line"},
                         Bad{id + secret + secret + secret + secret + secret, "more than 4"}}) {
    Result<ClusterSecret> r = ParseSecretText(bad.text, "f");
    ASSERT_FALSE(r.ok()) << bad.text;
    EXPECT_NE(r.status().message().find(bad.mention), std::string::npos) << r.status().message();
    // Errors never echo secret material.
    EXPECT_EQ(r.status().message().find(std::string(16, 'b')), std::string::npos);
  }
  Result<ClusterSecret> ok = ParseSecretText("# comment\n\n  " + id + secret + secret, "f");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->secrets.size(), 2u);
}

TEST(PeerAuth, SecretFileMustBePrivate) {
  const std::string path = ::testing::TempDir() + "/peer_auth_test.secret";
  std::remove(path.c_str());
  Result<ClusterSecret> s = GenerateSecret();
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(WriteSecretFile(path, *s).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(WriteSecretFile(path, *s).ok());  // never overwrites
  Result<ClusterSecret> loaded = LoadSecretFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->secrets, s->secrets);
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  Result<ClusterSecret> open = LoadSecretFile(path);
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.status().message().find(path), std::string::npos);
  EXPECT_NE(open.status().message().find("chmod 600"), std::string::npos);
  ASSERT_EQ(::chmod(path.c_str(), 0604), 0);
  EXPECT_FALSE(LoadSecretFile(path).ok());
  std::remove(path.c_str());
  Result<ClusterSecret> missing = LoadSecretFile(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(path), std::string::npos);
}

TEST(PeerAuth, HexRoundTrips) {
  std::string bytes("\x00\x7f\x80\xff", 4), back;
  EXPECT_EQ(ToHex(bytes), "007f80ff");
  ASSERT_TRUE(FromHex("007F80ff", &back));
  EXPECT_EQ(back, bytes);
  EXPECT_FALSE(FromHex("0", &back));
  EXPECT_FALSE(FromHex("0g", &back));
}

TEST(PeerHandshakeCodec, OnlyHandshakeMessagesDecodeBeforeAuthentication) {
  const core::AuthHello hello{"itsuka", std::string(16, '\1'), core::kPeerProtocolVersion, "node1",
                              "node1.0123456789abcdef", std::string(32, '\2')};
  const core::AuthProof proof{{std::string(32, '\3'), std::string(32, '\4')}};
  const core::AuthResult refusal{core::AuthResult::kDuplicateNode, "node id in use"};
  for (const core::PeerMessage& m :
       {core::PeerMessage(hello), core::PeerMessage(proof), core::PeerMessage(refusal)}) {
    const std::string bytes = wire::EncodePeerMessage(m);
    EXPECT_LT(bytes.size(), 1024u);
    Result<core::PeerMessage> back = wire::DecodeHandshakeMessage(bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, m);
    EXPECT_EQ(*wire::DecodePeerMessage(bytes), m);
  }
  // A version-1 Hello and any other message are refused without being decoded.
  Result<core::PeerMessage> old =
      wire::DecodeHandshakeMessage(wire::EncodePeerMessage(core::Hello{"itsuka", 1, "node9"}));
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.status().message().find("version 1"), std::string::npos);
  core::ReplicaWrite write{1, "k", core::Object(), ""};
  Result<core::PeerMessage> w = wire::DecodeHandshakeMessage(wire::EncodePeerMessage(write));
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("type 1 before the handshake"), std::string::npos);
  Result<core::PeerMessage> g =
      wire::DecodeHandshakeMessage(wire::EncodePeerMessage(core::GossipSyn{}));
  EXPECT_FALSE(g.ok());
  EXPECT_FALSE(wire::DecodeHandshakeMessage("").ok());
  EXPECT_FALSE(wire::DecodeHandshakeMessage("\x91").ok());
  // Over-long fields and too many proofs are refused by the decoder.
  core::AuthHello big = hello;
  big.cluster.assign(300, 'x');
  EXPECT_FALSE(wire::DecodeHandshakeMessage(wire::EncodePeerMessage(big)).ok());
  core::AuthProof many{std::vector<std::string>(5, std::string(32, 'm'))};
  EXPECT_FALSE(wire::DecodeHandshakeMessage(wire::EncodePeerMessage(many)).ok());
}

}  // namespace
}  // namespace itsuka::server
