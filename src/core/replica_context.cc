#include "core/replica_context.h"

#include <algorithm>

#include "common/hash.h"

namespace itsuka::core {

ReplicaContext::ReplicaContext(std::string self_name, LocalStore& local_store,
                               NodeOptions node_options)
    : self(std::move(self_name)),
      actor(node_options.actor.empty() ? self : node_options.actor),
      store(local_store),
      options(node_options),
      requests(node_options.first_request_id),
      recent(node_options.recent_writes) {}

bool ReplicaContext::IsReachable(const std::string& node) const {
  return node == self || unreachable.count(node) == 0;
}

std::vector<std::string> ReplicaContext::Replicas(std::string_view key) const {
  if (!ring) return {};
  return ring->PreferenceList(ring->PartitionOfKey(key), static_cast<size_t>(options.n));
}

bool ReplicaContext::IsPrimary(std::string_view key) const { return IsReplica(key, self); }

bool ReplicaContext::IsReplica(std::string_view key, const std::string& node) const {
  std::vector<std::string> replicas = Replicas(key);
  return std::find(replicas.begin(), replicas.end(), node) != replicas.end();
}

uint64_t OwnersFingerprint(std::vector<std::string> nodes) {
  std::sort(nodes.begin(), nodes.end());
  std::string joined;
  for (const std::string& n : nodes) {
    joined += n;
    joined.push_back('\0');
  }
  return Hash64(joined);
}

std::vector<std::string> ReplicaContext::WriteReplicas(std::string_view key) const {
  if (!write_ring) return Replicas(key);
  return write_ring->PreferenceList(write_ring->PartitionOfKey(key),
                                    static_cast<size_t>(options.n));
}

bool ReplicaContext::IsOwner(std::string_view key) const {
  if (IsPrimary(key)) return true;
  std::vector<std::string> w = WriteReplicas(key);
  return std::find(w.begin(), w.end(), self) != w.end();
}

std::vector<std::string> ReplicaContext::PendingReplicas(std::string_view key) const {
  std::vector<std::string> out_nodes;
  if (!write_ring || !ring) return out_nodes;
  std::vector<std::string> read = Replicas(key);
  for (const std::string& n : write_ring->PreferenceList(write_ring->PartitionOfKey(key),
                                                         static_cast<size_t>(options.n))) {
    if (std::find(read.begin(), read.end(), n) == read.end()) out_nodes.push_back(n);
  }
  return out_nodes;
}

std::vector<Target> ReplicaContext::ReachableTargets(
    const std::vector<std::string>& replicas) const {
  std::vector<Target> targets;
  for (const std::string& node : replicas) {
    if (IsReachable(node)) targets.push_back(Target{node, true, {}});
  }
  return targets;
}

Status ReplicaContext::MergeLocally(const std::string& key, const Object& incoming) {
  Result<Object> local = store.Read(key);
  if (!local.ok()) return local.status();
  Object merged = Merge(*local, incoming);
  if (!(merged == *local)) store.Stage(key, std::move(merged));
  return Status::Ok();
}

}  // namespace itsuka::core
