// Cluster authentication material and the handshake's proofs.
//
// A cluster secret file (cluster.secret_file) holds the cluster id, made once when the
// cluster is created, and one or more secrets:
//
//   # itsuka cluster secret: keep private (mode 0600)
//   cluster-id 3f0c...   (32 hex digits: 16 bytes)
//   secret 9a41...       (64 to 512 hex digits: 32 to 256 bytes; at most 4 lines)
//
// A node proves itself with every secret it holds and accepts a proof made with any of
// them, so a secret is rotated in two rolling restarts: add the new secret line on
// every node, then remove the old one. LoadSecretFile refuses a file readable or
// writable by group or others, a missing or malformed id, and a short secret, naming
// the file. Nothing here logs or returns secret bytes in a message.
//
// Proofs: HMAC-SHA256(secret, "itsuka-peer-auth-v2" | role | cluster id | initiator id |
// acceptor id | initiator nonce | acceptor nonce), each field length-prefixed, role
// "initiator" or "acceptor" (so one side's proof never passes as the other's). Proofs
// are compared in constant time.
//
// Thread-compatible; free functions only.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "itsuka/status.h"

namespace itsuka::server {

inline constexpr size_t kClusterIdBytes = 16;
inline constexpr size_t kMinSecretBytes = 32;
inline constexpr size_t kMaxSecretBytes = 256;
inline constexpr size_t kMaxSecrets = 4;
inline constexpr size_t kNonceBytes = 32;

struct ClusterSecret {
  std::string cluster_id;            // kClusterIdBytes raw bytes
  std::vector<std::string> secrets;  // raw bytes, 1..kMaxSecrets
};

// Parses the file's text; `origin` names it in errors.
Result<ClusterSecret> ParseSecretText(std::string_view text, const std::string& origin);
// Reads and parses the file, refusing one that group or others may read or write.
Result<ClusterSecret> LoadSecretFile(const std::string& path);
std::string FormatSecretFile(const ClusterSecret& s);
// A new secret; a new cluster id too unless `cluster_id` (raw bytes) is given.
Result<ClusterSecret> GenerateSecret(const std::string& cluster_id = "");
// Creates `path` (which must not exist) with mode 0600.
Status WriteSecretFile(const std::string& path, const ClusterSecret& s);

// `n` bytes from the OpenSSL CSPRNG; false if it failed.
bool RandomBytes(size_t n, std::string* out);
std::string ToHex(std::string_view bytes);
// False unless `hex` is an even number of hex digits.
bool FromHex(std::string_view hex, std::string* out);

enum class ProofRole { kInitiator, kAcceptor };
struct ProofInput {
  std::string cluster_id;
  std::string initiator_id, acceptor_id;
  std::string initiator_nonce, acceptor_nonce;
};
std::string ComputeProof(std::string_view secret, ProofRole role, const ProofInput& in);
// One proof per secret, in order.
std::vector<std::string> ComputeProofs(const std::vector<std::string>& secrets, ProofRole role,
                                       const ProofInput& in);
// True if any of `macs` is the proof of `role` under any of `secrets`. Every pair is
// compared in constant time.
bool VerifyProof(const std::vector<std::string>& secrets, const std::vector<std::string>& macs,
                 ProofRole role, const ProofInput& in);

}  // namespace itsuka::server
