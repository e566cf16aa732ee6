// Anti-entropy repair: the replica side (answering tree, leaf, fetch, push and
// tombstone requests) and the coordinator (RepairDriver), both pure.
//
// Design note (Dynamo §4.7 and Riak's active anti-entropy, with Cassandra's repair
// sessions as the operator-facing model): a coordinator -- any node -- takes a list
// of partitions and, for each, syncs pairs of its primary replicas: (r0, r1), ...,
// (r0, rk), then (r0, r1) ... (r0, rk-1) again, after which all k hold the merge of
// all. A pair is synced by descending both replicas' Merkle trees level by level
// (fetching only children of differing nodes), listing the (key, digest) entries of
// the differing leaves on both sides, and moving the object of every key whose digest
// differs *both ways*: each side merges what it receives (core::Merge, vector clocks,
// siblings kept), so both end with the same merge. Only differing keys move, and their
// number bounds the work: repairing 10 keys among a million moves about 10.
//
// Tombstones (Cassandra's gc_grace, made safe): after every pair of a partition was
// synced in one run over *all* N primaries, the coordinator lists r0's tombstones
// older than the grace, asks every other primary which it holds with the same digest,
// and only those held by all are purged, on all. A replica that missed the delete
// still holds an older version, its digest differs, and the tombstone stays. The grace
// must exceed the longest time an older version can still travel (hint age, a read
// repair in flight, clock skew between coordinators' written_at stamps).
//
// A replica the failure detector suspects (SetReachable false) is skipped, not waited
// for: the partition is synced among the others and the skip is recorded
// (RepairProgress::skipped_replicas); one that becomes suspected while a request to it
// is in flight is skipped at once too. So a run with a node away takes about as long
// as one without it, plus at most one request timeout per node that goes away before
// the detector notices.
//
// Transfers are throttled by a token bucket in keys/s and bytes/s. A request that
// gets no answer within the timeout restarts its pair (up to max_attempts); then the
// partition is reported failed and the run goes on. Progress (finished partitions and
// totals) is a plain value the shell persists, so a run resumes after a crash.
//
// No clocks or I/O; time comes in as arguments. Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/merkle.h"
#include "core/messages.h"
#include "core/node_core.h"
#include "core/ring.h"

namespace itsuka::core {

// Reply size bounds for the replica side.
struct RepairLimits {
  size_t max_entries = 4096;           // per LeafReply / TombstoneReply
  size_t max_bytes = 4u << 20;         // per FetchReply (at least one object)
  size_t max_request_items = 65536;    // larger requests are refused
};

// What a replica exposes to repair besides its objects.
class MerkleSource {
 public:
  virtual ~MerkleSource() = default;
  virtual uint32_t MerkleDepth() const = 0;
  virtual uint32_t Partitions() const = 0;
  // The partition's tree; nullptr when nothing was ever stored in it (all zeros).
  virtual const MerkleTree* Tree(uint32_t partition) const = 0;
  // Entries of `leaf` in key order after `after_key` (from the start if empty), at most
  // `max`; *more is set if there are others.
  virtual Result<std::vector<DigestEntry>> ListLeaf(uint32_t partition, uint32_t leaf,
                                                    std::string_view after_key, size_t max,
                                                    bool* more) = 0;
  // Keys of the partition that are purge candidates (PurgeCandidate: tombstones and
  // expiring values only), with when they died, in key order after `after_key`, at most `max`; *more is set if there are others.
  struct Tombstone {
    std::string key;
    uint64_t digest = 0;
    int64_t written_at_ms = 0;
  };
  virtual Result<std::vector<Tombstone>> ListTombstones(uint32_t partition, std::string_view after_key,
                                                        size_t max, bool* more) = 0;
};

// True if every sibling of `obj` is a tombstone or a value with an expiry; *at is then
// when the last of them died (a tombstone's write time, a value's expiry).
bool PurgeCandidate(const Object& obj, int64_t* at);
// True if `obj` is a purge candidate that died at least `grace_ms` before `now_wall_ms`:
// tombstones and expired values are purged by the same rule.
bool Purgeable(const Object& obj, int64_t now_wall_ms, int64_t grace_ms);

// True for the anti-entropy requests (TreeRequest, LeafRequest, FetchRequest,
// PushRequest, TombstoneRequest) and replies.
bool IsRepairRequest(const PeerMessage& msg);
bool IsRepairReply(const PeerMessage& msg);

// Answers one repair request as a replica. Pushed objects are merged and purges staged
// through `store` (the shell commits them before the reply leaves). `min_grace_ms` is
// this node's own tombstone grace, enforced whatever the request asks.
// REQUIRES: IsRepairRequest(msg).
PeerMessage AnswerRepairRequest(const PeerMessage& msg, LocalStore& store, MerkleSource& source,
                                const RepairLimits& limits, int64_t now_wall_ms,
                                int64_t min_grace_ms);

// ---- The coordinator --------------------------------------------------------------

struct RepairJob {
  uint64_t id = 0;
  bool dry_run = false;
  std::string node;                  // non-empty: only pairs involving this node
  std::vector<uint32_t> partitions;  // in the order to repair
  friend bool operator==(const RepairJob&, const RepairJob&) = default;
};

struct RepairTotals {
  uint64_t partitions_done = 0;     // synced (all pairs)
  uint64_t partitions_failed = 0;   // a replica did not answer (or had no tree)
  uint64_t partitions_skipped = 0;  // fewer than two replicas to compare
  uint64_t leaves_differing = 0;    // per partition, counted once
  uint64_t keys_differing = 0;      // keys not alike on all replicas, counted once
  uint64_t keys_moved = 0;          // objects sent to a replica
  uint64_t bytes_moved = 0;
  uint64_t tombstones_purged = 0;   // keys purged (on all their primaries)
  friend bool operator==(const RepairTotals&, const RepairTotals&) = default;
};

// A job and how far it got: what the shell persists to resume it.
struct RepairProgress {
  RepairJob job;
  std::set<uint32_t> finished;  // partitions done, failed or skipped
  std::vector<uint32_t> failed;
  RepairTotals totals;
  int64_t elapsed_ms = 0;       // of earlier incarnations (before a resume)
  // Replicas left out because the failure detector suspected them (or the peer was
  // down) when their turn came: the partitions synced without each. A later run
  // (repair --node ID) covers them. No tombstone is purged in such a partition.
  std::map<std::string, std::vector<uint32_t>> skipped_replicas;
  friend bool operator==(const RepairProgress&, const RepairProgress&) = default;
};
std::string EncodeRepairProgress(const RepairProgress& p);
Result<RepairProgress> DecodeRepairProgress(std::string_view text);

struct RepairOptions {
  int n = 3;
  int64_t request_timeout_ms = 10000;
  int max_attempts = 3;
  double keys_per_s = 0;    // 0: unthrottled
  double bytes_per_s = 0;   // 0: unthrottled
  int64_t tombstone_grace_ms = 86400000;
  size_t leaves_per_request = 64;
  size_t keys_per_fetch = 256;
};

class RepairDriver {
 public:
  RepairDriver(std::string self, RepairOptions options);

  const RepairOptions& options() const { return options_; }
  void SetRing(Ring ring) { ring_ = std::move(ring); }
  // Partitions whose owners are changing (a join or decommission in flight): they are
  // synced, but their tombstones are not purged until the move is done.
  void SetMoving(std::set<uint32_t> partitions) { moving_ = std::move(partitions); }
  void SetReachable(const std::string& node, bool up);

  // Starts (or, with progress from an earlier run, resumes) a job. Fails if one is
  // running or the job names no partition.
  Status Start(RepairProgress progress, int64_t now_ms);
  // Cancels the running job (it stays in progress() as it was).
  void Stop();
  bool running() const { return running_; }
  const RepairProgress& progress() const { return progress_; }
  // Bumped whenever progress() changed in a way worth persisting (a partition finished).
  uint64_t progress_version() const { return progress_version_; }
  int64_t ElapsedMs(int64_t now_ms) const;
  // The partition being repaired, if any.
  std::optional<uint32_t> current() const;
  // When each partition last finished a successful repair (coordinator's time).
  const std::map<uint32_t, int64_t>& last_repaired() const { return last_repaired_; }
  // Why the last pair attempt failed (empty if none did).
  const std::string& last_error() const { return last_error_; }

  void OnReply(const std::string& from, const PeerMessage& msg, int64_t now_ms);
  void Tick(int64_t now_ms);
  // Requests to send (destination, message); may name this node itself.
  std::vector<std::pair<std::string, PeerMessage>> TakeSends();
  bool HasSends() const { return !sends_.empty(); }

 private:
  enum class Phase { kWait, kTree, kLeaves, kFetch, kPush, kTombList, kTombCheck, kTombPurge };
  struct Side {
    std::string node;
    std::optional<std::vector<uint64_t>> hashes;
    std::vector<DigestEntry> entries;
    bool leaves_done = false;
    std::string after_key;       // paging within the current leaf chunk
    size_t leaf_cursor = 0;      // index into chunk of the next leaf to ask
    uint32_t depth = 0;
  };
  // A request in flight: the node it went to and, for the pair's tree, leaf, fetch and
  // push requests, the side of the pair that node is. Tombstone requests go to each of
  // the partition's replicas in turn, not to a side: they have none.
  struct Awaited {
    std::optional<int> side;
    std::string node;
  };
  // A key whose digests differ between the pair's sides (0: the side has nothing).
  struct DiffKey {
    std::string key;
    uint64_t digest[2] = {0, 0};
  };

  void StartNextPartition(int64_t now_ms);
  void StartPair(int64_t now_ms);
  void BeginTree(int64_t now_ms);
  void SendTree(int64_t now_ms);
  void NextLeafChunk(int64_t now_ms);
  void SendLeaves(int side, int64_t now_ms);
  void CompareLeaves(int64_t now_ms);
  void PumpTransfer(int64_t now_ms);
  void PairDone(int64_t now_ms);
  // Every pair of the partition was synced or skipped: purge tombstones, or finish.
  void AllPairsDone(int64_t now_ms);
  bool Away(const std::string& node) const { return unreachable_.count(node) != 0; }
  // Records that `node` was left out of the current partition.
  void NoteSkipped(const std::string& node);
  void BeginTombstones(int64_t now_ms);
  void TombstonesDone(int64_t now_ms);
  // Sends `node` a tombstone request of `mode` (no side): kList lists after tomb_after_,
  // kCheck and kPurge carry tomb_candidates_.
  void AskTombstones(const std::string& node, TombstoneRequest::Mode mode, int64_t now_ms);
  void FinishPartition(bool ok, int64_t now_ms);
  void Fail(const std::string& why, int64_t now_ms);
  // OnReply's steps, one per reply type, for a reply the phase expects (from the side
  // `s` of the pair, or from a replica for the tombstone steps).
  void OnTreeReply(const std::string& from, const TreeReply& r, int s, int64_t now_ms);
  void OnLeafReply(const std::string& from, const LeafReply& r, int s, int64_t now_ms);
  void OnFetchReply(const std::string& from, const FetchReply& r, int s, int64_t now_ms);
  void OnPushReply(const std::string& from, const PushReply& r, int64_t now_ms);
  // A replica's list (kTombList) or confirmation (kTombCheck) of tombstone candidates:
  // ask the next replica to confirm them, or once all did, ask every replica to purge.
  void OnTombstonesListed(const TombstoneReply& r, int64_t now_ms);
  void OnTombstonesPurged(int64_t now_ms);
  uint64_t Send(const std::string& to, PeerMessage msg, int64_t now_ms);
  void Refill(int64_t now_ms);

  const std::string self_;
  const RepairOptions options_;
  std::optional<Ring> ring_;
  std::set<uint32_t> moving_;
  std::set<std::string> unreachable_;

  bool running_ = false;
  RepairProgress progress_;
  uint64_t progress_version_ = 0;
  int64_t started_ms_ = 0;
  std::map<uint32_t, int64_t> last_repaired_;
  std::vector<std::pair<std::string, PeerMessage>> sends_;
  uint64_t next_req_ = 1;
  std::map<uint64_t, Awaited> waiting_;  // by request id
  std::vector<DiffKey> batch_;                   // keys being fetched
  std::vector<std::string> asked_[2];            // what each side was asked for
  std::map<std::string, Object> fetched_[2];
  std::string last_error_;
  int64_t deadline_ms_ = 0;

  // The partition in progress.
  size_t next_index_ = 0;  // into progress_.job.partitions
  std::optional<uint32_t> partition_;
  std::vector<std::string> replicas_;
  std::vector<std::pair<int, int>> pairs_;  // indices into replicas_
  size_t pair_ = 0;
  int attempts_ = 0;
  bool partial_ = false;  // a replica of the partition was skipped
  Phase phase_ = Phase::kWait;
  Side sides_[2];
  uint32_t level_ = 0;
  std::vector<uint32_t> indices_;
  std::vector<uint32_t> leaves_;     // differing leaves of the pair
  size_t leaf_next_ = 0;             // next chunk start in leaves_
  std::vector<uint32_t> chunk_;
  std::vector<DiffKey> diff_;  // the differing keys of the current leaf chunk
  size_t diff_next_ = 0;
  // Keys and leaves of the current partition already counted (a key differing in
  // several pairs counts once).
  std::set<std::string> counted_keys_;
  std::set<uint32_t> counted_leaves_;
  void OnFetched(int64_t now_ms);
  std::vector<DigestEntry> tomb_candidates_;
  std::string tomb_after_;       // list the partition's tombstones after this key
  std::string tomb_next_after_;  // where the batch being purged ends
  bool tomb_more_ = false;
  size_t tomb_replica_ = 0;
  double key_tokens_ = 0, byte_tokens_ = 0;
  int64_t refilled_ms_ = 0;
};

}  // namespace itsuka::core
