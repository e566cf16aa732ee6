// Operator commands of the command table (CommandExecutor, server/commands.h) beside
// those of admin_commands.cc:
//
//  - ITSUKA.TRANSFERS: the partition transfers this node runs for a move (core/transfer.h),
//    one entry per source node: partitions wanted, keys and bytes merged so far, timings.
//  - ITSUKA.SNAPSHOT CREATE <id>: a RocksDB checkpoint of this node's data directory in
//    <data_dir>.snapshots/<id>/db with a manifest (<id>/manifest.json: snapshot id, node
//    id, cluster id, ring version, wall time, the files and their sizes). The checkpoint
//    runs on the loop thread: hard links to the SST files and a copy of the live WAL (no
//    memtable flush), so it takes milliseconds; the reply says how long it took.
//    ITSUKA.SNAPSHOT LIST: the snapshots kept there.
//
// Restoring is offline (`itsuka-admin restore`, docs/DESIGN.md "Snapshots and restore").
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/log.h"
#include "server/commands.h"
#include "server/peer_auth.h"
#include "wire/resp.h"

namespace itsuka::server {
namespace {

namespace resp = wire::resp;
namespace fs = std::filesystem;

std::string Join(const std::vector<uint32_t>& v) {
  std::string s;
  for (uint32_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s.empty() ? "-" : s;
}

void AppendPairs(const std::vector<std::pair<std::string, std::string>>& kv, std::string* out) {
  resp::AppendArrayHeader(out, kv.size() * 2);
  for (const auto& [k, v] : kv) {
    resp::AppendBulk(out, k);
    resp::AppendBulk(out, v);
  }
}

// A snapshot id names a directory: 1-64 of [A-Za-z0-9_.-], not starting with '.'.
bool ValidSnapshotId(const std::string& id) {
  if (id.empty() || id.size() > 64 || id[0] == '.') return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Where a node keeps its snapshots: beside its data directory, so that wiping the data
// directory keeps them, and on the same file system (hard links) in the usual layouts.
std::string SnapshotRoot(const std::string& data_dir) {
  std::string d = fs::path(data_dir).lexically_normal().string();
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d + ".snapshots";
}

}  // namespace

void CommandExecutor::Transfers(Session&, std::vector<std::string>&, std::string* out) {
  if (admin_ == nullptr) return resp::AppendError(out, "ERR membership is not available");
  const int64_t now = admin_->NowMs();
  const std::vector<core::TransferProgress> progress = core_.TransfersInProgress();
  resp::AppendArrayHeader(out, 2);
  AppendPairs({{"ring_version", std::to_string(core_.ring()->version())},
               {"target_ring_version", std::to_string(core_.write_ring()->version())},
               {"partitions_pending", std::to_string(core_.TransfersPending())},
               {"sources", std::to_string(progress.size())},
               {"objects_copied_total", std::to_string(core_.transferred_objects())}},
              out);
  resp::AppendArrayHeader(out, progress.size());
  for (const core::TransferProgress& p : progress) {
    const char* state = p.done ? "done" : !p.reachable ? "unreachable" : p.started_ms == 0 ? "waiting" : "copying";
    AppendPairs({{"source", p.source},
                 {"state", state},
                 {"partitions", Join(p.partitions)},
                 {"partitions_count", std::to_string(p.partitions.size())},
                 {"keys", std::to_string(p.keys)},
                 {"bytes", std::to_string(p.bytes)},
                 {"batches", std::to_string(p.batches)},
                 {"elapsed_ms", std::to_string(p.started_ms == 0 ? 0 : now - p.started_ms)},
                 {"last_batch_ago_ms", std::to_string(p.last_batch_ms == 0 ? -1 : now - p.last_batch_ms)}},
                out);
  }
}

void CommandExecutor::Snapshot(Session&, std::vector<std::string>& args, std::string* out) {
  const std::string sub = Upper(args[1]);
  const fs::path root = SnapshotRoot(config_.data_dir);
  if (sub == "LIST" && args.size() == 2) {
    std::vector<std::string> ids;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root, ec)) {
      if (fs::exists(e.path() / "manifest.json")) ids.push_back(e.path().filename().string());
    }
    std::sort(ids.begin(), ids.end());
    resp::AppendArrayHeader(out, ids.size());
    for (const std::string& id : ids) resp::AppendBulk(out, id);
    return;
  }
  if (sub != "CREATE" || args.size() != 3) {
    return resp::AppendError(out, "ERR usage: ITSUKA.SNAPSHOT CREATE <id> | LIST");
  }
  const std::string& id = args[2];
  if (!ValidSnapshotId(id)) {
    return resp::AppendError(out, "ERR a snapshot id is 1-64 letters, digits, '_', '-' or '.', not starting with '.'");
  }
  const fs::path dir = root / id;
  std::error_code ec;
  if (fs::exists(dir, ec)) return resp::AppendError(out, "ERR snapshot '" + id + "' exists here: " + dir.string());
  fs::create_directories(dir, ec);
  if (ec) return resp::AppendError(out, "ERR cannot create " + dir.string() + ": " + ec.message());
  const auto t0 = std::chrono::steady_clock::now();
  Status st = store_.engine().Checkpoint((dir / "db").string());
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!st.ok()) {
    fs::remove_all(dir, ec);
    return resp::AppendError(out, "ERR checkpoint failed: " + st.ToString());
  }
  std::string cluster_id;
  if (!store_.engine().Get(Column::kMeta, "cluster_id", &cluster_id).ok()) cluster_id.clear();
  nlohmann::json files = nlohmann::json::array();
  uint64_t bytes = 0;
  for (const auto& e : fs::directory_iterator(dir / "db", ec)) {
    const uint64_t size = e.is_regular_file() ? e.file_size() : 0;
    bytes += size;
    files.push_back({{"name", e.path().filename().string()}, {"bytes", size}});
  }
  nlohmann::json manifest = {{"format", 1},
                             {"snapshot_id", id},
                             {"node_id", config_.node_id},
                             {"cluster_id", ToHex(cluster_id)},
                             {"ring_version", core_.ring()->version()},
                             {"created_unix_ms", clock_.WallMs()},
                             {"checkpoint_ms", ms},
                             {"bytes", bytes},
                             {"files", files}};
  {
    std::ofstream f(dir / "manifest.json.tmp");
    f << manifest.dump(2) << "\n";
    f.close();
    if (!f) return resp::AppendError(out, "ERR cannot write the manifest in " + dir.string());
  }
  fs::rename(dir / "manifest.json.tmp", dir / "manifest.json", ec);
  if (ec) return resp::AppendError(out, "ERR cannot write the manifest: " + ec.message());
  char took[32];
  std::snprintf(took, sizeof took, "%.2f", ms);
  LOG_INFO << "snapshot " << id << ": checkpoint of " << files.size() << " files (" << bytes
           << " bytes) in " << dir.string() << ", " << took << " ms on the loop";
  AppendPairs({{"snapshot_id", id},
               {"node_id", config_.node_id},
               {"path", dir.string()},
               {"files", std::to_string(files.size())},
               {"bytes", std::to_string(bytes)},
               {"ring_version", std::to_string(core_.ring()->version())},
               {"checkpoint_ms", took}},
              out);
}

}  // namespace itsuka::server
