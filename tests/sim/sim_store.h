// The simulator's one replica store: an in-memory core::NodeStore (objects and Paxos
// acceptor state, scans for partition transfers) that keeps what was staged apart from
// what is durable, so a crash loses exactly what was not committed. With `merkle` on
// its MerkleSource side is live for anti-entropy (Merkle trees and a digest index kept
// on commit, as server::Store does with RocksDB: a second implementation, independent
// of the shell), and an empty object commits as a delete. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/merkle.h"
#include "core/node.h"
#include "core/node_core.h"
#include "core/repair.h"

namespace itsuka::core::sim {

class SimStore : public NodeStore {
 public:
  SimStore(uint32_t partitions, bool merkle)
      : partitions_(partitions), merkle_(merkle), depth_(MerkleDepthFor(partitions)) {}

  Result<Object> Read(std::string_view key) override;
  void Stage(std::string_view key, Object obj) override;
  Result<AcceptorState> ReadPaxos(std::string_view key) override;
  void StagePaxos(std::string_view key, AcceptorState st) override;
  // Staged objects are committed before anything leaves the node (Cluster::Drain), so
  // the durable map with the staged ones on top is what the real store reads.
  Result<ScanBatch> Scan(std::string_view start, size_t max_keys, size_t max_examined,
                         const std::function<bool(std::string_view)>& want) override;
  Result<PaxosScanBatch> ScanPaxos(std::string_view start, std::string_view end, size_t max_keys,
                                   size_t max_examined,
                                   const std::function<bool(std::string_view)>& want) override;

  // Makes everything staged durable (the group commit before the outbox is released).
  void Commit();
  // Loses everything staged, as a process crash does.
  void Crash();
  bool HasStaged() const override { return !staged_.empty() || !staged_paxos_.empty(); }
  // No data is ever lost to corruption here: nothing is suspect.
  const std::set<uint32_t>& suspect() const override { return suspect_; }
  void ClearSuspect(const std::set<uint32_t>& /*partitions*/) override {}
  const std::map<std::string, Object>& durable() const { return durable_; }
  const std::map<std::string, AcceptorState>& durable_paxos() const { return durable_paxos_; }
  // The durable object of `key` (empty if absent).
  Object Durable(const std::string& key) const;

  // MerkleSource (meaningful with `merkle` on).
  uint32_t MerkleDepth() const override { return depth_; }
  uint32_t Partitions() const override { return partitions_; }
  const MerkleTree* Tree(uint32_t p) const override;
  Result<std::vector<DigestEntry>> ListLeaf(uint32_t p, uint32_t leaf, std::string_view after,
                                            size_t max, bool* more) override;
  Result<std::vector<Tombstone>> ListTombstones(uint32_t p, std::string_view after, size_t max,
                                                bool* more) override;

 private:
  void CommitIndexed(const std::string& key, Object obj);

  const uint32_t partitions_;
  const bool merkle_;
  const uint32_t depth_;
  std::map<std::string, Object> durable_, staged_;
  std::map<std::string, AcceptorState> durable_paxos_, staged_paxos_;
  std::map<uint32_t, MerkleTree> trees_;
  const std::set<uint32_t> suspect_;
  std::map<uint32_t, std::map<uint32_t, std::map<std::string, uint64_t>>> index_;
};

}  // namespace itsuka::core::sim
