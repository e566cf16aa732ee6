// The keyspace coordinator (docs/DESIGN.md 4.17): cluster-wide SCAN, KEYS and DBSIZE.
//
// SCAN step. A cursor is (partition, leaf) of the fixed layout (core/keyspace.h). A
// step asks every reachable read-ring primary of the cursor's partition (this node
// answers its own part from its store) for the live keys of a range of leaves
// (ScanRequest), needs answers from a majority of the partition's primaries (so any key
// acknowledged with W=quorum, which a majority holds, is seen by at least one of them),
// and returns the union over the leaves every answer covered; the cursor moves past
// those. A SCAN call takes steps until it holds COUNT keys, a round limit, or the end.
// KEYS is a DBSIZE, refused over `keys_max`, then steps until the end. DBSIZE asks
// every reachable member for its exact per-partition counts (KeyCountRequest) and sums,
// per partition, the largest count among the partition's answering primaries.
//
// Peer requests are answered at once from committed data (Store::ScanLeaves,
// Store::value_counts); nothing is staged. Outstanding requests time out after
// `timeout_ms` (then a step uses the answers it has, if they are a majority).
//
// Thread-compatible: the event-loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/keyspace.h"
#include "core/messages.h"
#include "core/node_core.h"
#include "server/store.h"

namespace itsuka::server {

struct KeyspaceQuery {
  enum class Kind { kScan, kKeys, kDbSize };
  Kind kind = Kind::kScan;
  core::ScanCursor cursor;  // kScan: where to go on
  size_t count = 10;        // kScan: the COUNT hint
  std::string pattern;      // kScan/kKeys: MATCH (empty: all)
  uint64_t keys_max = 0;    // kKeys: refuse when the cluster holds more keys
};

class KeyspaceCoordinator {
 public:
  // Most steps one SCAN call takes looking for COUNT keys (empty partitions are cheap).
  static constexpr int kMaxStepsPerScan = 32;
  using SendFn = std::function<void(const std::string& to, const core::PeerMessage& msg)>;

  KeyspaceCoordinator(std::string self, Store& store, const core::NodeCore& core, int64_t timeout_ms,
                      SendFn send);

  // Starts a query for local client request `client_req`; its result (ClientResult with
  // keys/cursor/count, or an error status) comes out of TakeResults.
  void Start(uint64_t client_req, KeyspaceQuery q, int64_t now_ms, int64_t wall_ms);
  // An admitted keyspace message from a peer (a request is answered at once).
  void OnMessage(const std::string& from, const core::PeerMessage& msg, int64_t now_ms,
                 int64_t wall_ms);
  void Tick(int64_t now_ms, int64_t wall_ms);
  bool HasResults() const { return !results_.empty(); }
  std::vector<core::ClientResult> TakeResults();
  size_t jobs() const { return jobs_.size(); }

 private:
  struct Job {
    uint64_t client_req = 0;
    KeyspaceQuery q;
    bool counting = false;  // waiting for KeyCountReplies (DBSIZE, KEYS' first phase)
    int steps = 0;
    std::vector<std::string> keys;
    // The step in flight.
    std::vector<std::string> asked;  // the nodes asked
    size_t answered = 0;             // replies or failures received
    size_t need = 0;                 // answers needed (scan: a majority of the primaries)
    uint32_t leaf_end = 0;
    int64_t deadline_ms = 0;
    std::vector<core::ScanReply> replies;                  // ok ones
    std::map<std::string, std::vector<uint64_t>> counts;  // node -> its counts
  };
  struct Outstanding {
    uint64_t job = 0;
    std::string node;
  };

  void StartStep(uint64_t id, Job& job, int64_t now_ms, int64_t wall_ms);
  void StartScanStep(uint64_t id, Job& job, int64_t now_ms, int64_t wall_ms);
  void StartCountStep(uint64_t id, Job& job, int64_t now_ms);
  // Called when every asked node answered or the deadline passed.
  void FinishStep(uint64_t id, int64_t now_ms, int64_t wall_ms);
  void FinishScanStep(uint64_t id, Job& job, int64_t now_ms, int64_t wall_ms);
  void FinishCountStep(uint64_t id, Job& job, int64_t now_ms, int64_t wall_ms);
  void Complete(uint64_t id, core::ClientResult r);
  void Fail(uint64_t id, Status st);
  void Answer(const std::string& from, const core::PeerMessage& msg, int64_t wall_ms);
  uint64_t NewRequest(uint64_t job, const std::string& node);
  void Drop(uint64_t job);

  const std::string self_;
  Store& store_;
  const core::NodeCore& core_;
  const int64_t timeout_ms_;
  SendFn send_;
  uint64_t next_job_ = 1;
  uint64_t next_req_;
  std::map<uint64_t, Job> jobs_;
  std::map<uint64_t, Outstanding> outstanding_;  // req_id -> whose
  std::vector<core::ClientResult> results_;
};

}  // namespace itsuka::server
