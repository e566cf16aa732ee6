// Operator commands of the command table (CommandExecutor, server/commands.h) beside
// those of admin_commands.cc:
//
//  - ITSUKA.TRANSFERS: the partition transfers this node runs for a move (core/transfer.h),
//    one entry per source node: partitions wanted, keys and bytes merged so far, timings.
//  - ITSUKA.SNAPSHOT CREATE <id>: starts a RocksDB checkpoint of this node's data
//    directory into <data_dir>.snapshots/<id>/db on a thread of its own (hard links to
//    the SST files, a copy of the live WAL: up to a second with a full memtable, too long
//    for the loop), then the manifest (<id>/manifest.json: snapshot id, node id, cluster
//    id, ring version and wall time at CREATE, the files and their sizes); one at a
//    time. ITSUKA.SNAPSHOT STATUS <id>: running, or done with its figures (or its error).
//    ITSUKA.SNAPSHOT LIST: the snapshots kept there (those with a manifest).
//
// Restoring is offline (`itsuka-admin restore`, docs/DESIGN.md "Snapshots and restore").
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <atomic>
#include <fstream>
#include <thread>

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
  const std::vector<core::SourceTransferProgress> progress = core_.TransfersInProgress();
  resp::AppendArrayHeader(out, 2);
  AppendPairs({{"ring_version", std::to_string(core_.ring()->version())},
               {"target_ring_version", std::to_string(core_.write_ring()->version())},
               {"partitions_pending", std::to_string(core_.TransfersPending())},
               {"sources", std::to_string(progress.size())},
               {"objects_copied_total", std::to_string(core_.transferred_objects())}},
              out);
  resp::AppendArrayHeader(out, progress.size());
  for (const core::SourceTransferProgress& p : progress) {
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

// One snapshot: its manifest fields, captured on the loop thread when it starts, and
// what the checkpoint thread did, read by the loop once `done` is set.
struct SnapshotJob {
  std::string id;
  fs::path dir;
  nlohmann::json manifest;
  std::thread thread;
  std::atomic<bool> done{false};
  // Written by the thread before `done`:
  std::string error;  // why it failed ("" if it did not)
  double ms = 0;      // the checkpoint's duration
  uint64_t files = 0, bytes = 0;
};

namespace {

// The checkpoint thread: the checkpoint, then the manifest beside it (written to a
// temporary name and renamed, so a manifest is always whole). A failed snapshot's
// directory is removed.
void RunSnapshot(SnapshotJob* j, Engine* engine) {
  const auto t0 = std::chrono::steady_clock::now();
  Status st = engine->Checkpoint((j->dir / "db").string());
  j->ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::error_code ec;
  if (st.ok()) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& e : fs::directory_iterator(j->dir / "db", ec)) {
      const uint64_t size = e.is_regular_file() ? e.file_size() : 0;
      j->bytes += size;
      files.push_back({{"name", e.path().filename().string()}, {"bytes", size}});
    }
    j->files = files.size();
    j->manifest["checkpoint_ms"] = j->ms;
    j->manifest["bytes"] = j->bytes;
    j->manifest["files"] = files;
    std::ofstream f(j->dir / "manifest.json.tmp");
    f << j->manifest.dump(2) << "\n";
    f.close();
    if (!f) j->error = "cannot write the manifest in " + j->dir.string();
    if (j->error.empty()) fs::rename(j->dir / "manifest.json.tmp", j->dir / "manifest.json", ec);
    if (j->error.empty() && ec) j->error = "cannot write the manifest: " + ec.message();
  } else {
    j->error = "checkpoint failed: " + st.ToString();
  }
  if (!j->error.empty()) fs::remove_all(j->dir, ec);
  j->done.store(true);
}

}  // namespace

void SnapshotJobDeleter::operator()(SnapshotJob* job) const {
  if (job->thread.joinable()) job->thread.join();
  delete job;
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
  if ((sub != "CREATE" && sub != "STATUS") || args.size() != 3) {
    return resp::AppendError(out, "ERR usage: ITSUKA.SNAPSHOT CREATE <id> | STATUS <id> | LIST");
  }
  if (!ValidSnapshotId(args[2])) {
    return resp::AppendError(out, "ERR a snapshot id is 1-64 letters, digits, '_', '-' or '.', not starting with '.'");
  }
  if (sub == "CREATE") return SnapshotCreate(args[2], out);
  SnapshotStatus(args[2], out);
}

// Starts the checkpoint on a thread of its own: copying the live WAL takes the better
// part of a second with tens of MiB in the memtable, too long for the loop.
void CommandExecutor::SnapshotCreate(const std::string& id, std::string* out) {
  if (snapshot_job_ && !snapshot_job_->done.load()) {
    return resp::AppendError(out, "BUSY snapshot '" + snapshot_job_->id + "' is being taken");
  }
  const fs::path dir = fs::path(SnapshotRoot(config_.data_dir)) / id;
  std::error_code ec;
  if (fs::exists(dir, ec)) return resp::AppendError(out, "ERR snapshot '" + id + "' exists here: " + dir.string());
  fs::create_directories(dir, ec);
  if (ec) return resp::AppendError(out, "ERR cannot create " + dir.string() + ": " + ec.message());
  if (snapshot_job_ && snapshot_job_->thread.joinable()) snapshot_job_->thread.join();  // it is done
  std::string cluster_id;
  if (!store_.engine().Get(Column::kMeta, "cluster_id", &cluster_id).ok()) cluster_id.clear();
  std::unique_ptr<SnapshotJob, SnapshotJobDeleter> job(new SnapshotJob);
  job->id = id;
  job->dir = dir;
  job->manifest = {{"format", 1},
                   {"snapshot_id", id},
                   {"node_id", config_.node_id},
                   {"cluster_id", ToHex(cluster_id)},
                   {"ring_version", core_.ring()->version()},
                   {"created_unix_ms", clock_.WallMs()}};
  job->thread = std::thread(RunSnapshot, job.get(), &store_.engine());
  snapshot_job_ = std::move(job);
  LOG_INFO << "snapshot " << id << ": checkpoint started in " << dir.string();
  resp::AppendSimple(out, "OK");
}

void CommandExecutor::SnapshotStatus(const std::string& id, std::string* out) {
  SnapshotJob* j = snapshot_job_.get();
  if (j == nullptr || j->id != id) {
    return resp::AppendError(out, "ERR no snapshot '" + id + "' was started here since the node started");
  }
  if (!j->done.load()) return AppendPairs({{"snapshot_id", id}, {"state", "running"}}, out);
  if (j->thread.joinable()) {
    j->thread.join();
    LOG_INFO << "snapshot " << id << ": checkpoint of " << j->files << " files (" << j->bytes << " bytes) in "
             << j->dir.string() << " took " << j->ms << " ms off the loop"
             << (j->error.empty() ? "" : "; " + j->error);
  }
  if (!j->error.empty()) return resp::AppendError(out, "ERR " + j->error);
  char took[32];
  std::snprintf(took, sizeof took, "%.2f", j->ms);
  AppendPairs({{"snapshot_id", id},
               {"state", "done"},
               {"node_id", config_.node_id},
               {"path", j->dir.string()},
               {"files", std::to_string(j->files)},
               {"bytes", std::to_string(j->bytes)},
               {"ring_version", std::to_string(j->manifest["ring_version"].get<uint64_t>())},
               {"checkpoint_ms", took}},
              out);
}

}  // namespace itsuka::server
