#include "ops.h"

#include <time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "cluster_view.h"

namespace itsuka::admin {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kTimeoutMs = 3000;

int Fail(const std::string& msg) {
  std::fprintf(stderr, "itsuka-admin: %s\n", msg.c_str());
  return 1;
}

std::unique_ptr<Conn> ConnectHost(const Options& o, std::string* err) {
  std::optional<Endpoint> e = ParseEndpoint(o.host + ":" + o.port);
  if (!e) {
    *err = "bad --host '" + o.host + ":" + o.port + "'";
    return nullptr;
  }
  return Conn::Open(*e, o.password, kTimeoutMs, err);
}

// The view of the node --host names; false (and a message printed) if it is not there.
bool LoadHostView(const Options& o, ClusterView* view) {
  std::string err;
  std::unique_ptr<Conn> c = ConnectHost(o, &err);
  if (!c || !LoadView(*c, view, &err)) {
    Fail(err);
    return false;
  }
  return true;
}

std::string Bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char s[32];
  std::snprintf(s, sizeof s, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return s;
}

std::string Pct(double x) {
  char b[16];
  std::snprintf(b, sizeof b, "%.1f%%", x);
  return b;
}

// The state status shows: left, then down (as the view's node sees it), then the
// membership's joining/leaving, else up.
std::string State(const Member& m) {
  if (m.status == "left") return "left";
  if (m.reachable == "no") return "down";
  if (m.status == "joining" || m.status == "leaving") return m.status;
  return "up";
}

// db0's keys=N of INFO keyspace (0 when absent: an empty node prints no db0 line).
long long KeyspaceKeys(const std::map<std::string, std::string>& info) {
  auto it = info.find("db0");
  if (it == info.end() || it->second.rfind("keys=", 0) != 0) return 0;
  return std::atoll(it->second.c_str() + 5);
}

// ---- status --------------------------------------------------------------------------

struct Ownership {
  int primary = 0, replica = 0;
};

std::map<std::string, Ownership> Owners(const ClusterView& v) {
  std::map<std::string, Ownership> out;
  for (const std::vector<std::string>& reps : v.replicas) {
    for (size_t i = 0; i < reps.size(); ++i) {
      if (i == 0) ++out[reps[i]].primary;
      ++out[reps[i]].replica;
    }
  }
  return out;
}

json StatusRow(const ClusterView& v, const Member& m, const std::map<std::string, Ownership>& owners,
               const std::map<std::string, long long>& hints_for) {
  const double parts = static_cast<double>(std::max<size_t>(1, v.replicas.size()));
  const auto own = owners.count(m.id) ? owners.at(m.id) : Ownership{};
  json row = {{"id", m.id},
              {"state", State(m)},
              {"membership", m.status},
              {"reachable", m.reachable == "self" || m.reachable == "yes"},
              {"address", m.client_addr},
              {"peer_address", m.peer_addr},
              {"partitions_primary", own.primary},
              {"partitions_replica", own.replica},
              {"ownership_pct", 100.0 * own.primary / parts},
              {"effective_ownership_pct", 100.0 * own.replica / parts},
              {"hints_for", hints_for.count(m.id) ? hints_for.at(m.id) : 0}};
  if (m.status == "left") row["reachable"] = false;
  if (!m.info_ok) {
    row["info_error"] = m.status == "left" ? "left the cluster: not contacted" : m.info_error;
    for (const char* k : {"data_bytes", "keys", "hints_held", "hints_held_bytes", "last_repair_age_s",
                          "uptime_s", "repair_state"}) {
      row[k] = nullptr;
    }
    return row;
  }
  const auto& i = m.info;
  row["data_bytes"] = InfoNum(i, "rocksdb_sst_files_bytes") + InfoNum(i, "rocksdb_memtable_bytes");
  row["keys"] = KeyspaceKeys(i);
  row["hints_held"] = InfoNum(i, "hints_stored");
  row["hints_held_bytes"] = InfoNum(i, "hints_stored_bytes");
  row["last_repair_age_s"] =
      i.count("repair_newest_partition_age_s") ? json(InfoNum(i, "repair_newest_partition_age_s")) : json(nullptr);
  row["repair_state"] = i.count("repair_state") ? i.at("repair_state") : "";
  row["uptime_s"] = InfoNum(i, "uptime_in_seconds");
  return row;
}

// hints other members keep for each target: INFO handoff's targetN lines.
std::map<std::string, long long> HintsFor(const ClusterView& v) {
  std::map<std::string, long long> out;
  for (const Member& m : v.members) {
    for (const auto& [k, val] : m.info) {
      if (k.rfind("target", 0) != 0) continue;
      std::string id;
      long long keys = 0;
      std::stringstream ss(val);
      for (std::string f; std::getline(ss, f, ',');) {
        if (f.rfind("id=", 0) == 0) id = f.substr(3);
        if (f.rfind("keys=", 0) == 0) keys = std::atoll(f.c_str() + 5);
      }
      if (!id.empty()) out[id] += keys;
    }
  }
  return out;
}

void PrintStatus(const json& out) {
  const json& c = out["cluster"];
  std::printf("cluster view from %s: ring version %lld, %lld partitions, n=%lld, %zu members\n",
              c["view_from"].get<std::string>().c_str(), c["ring_version"].get<long long>(),
              c["partitions"].get<long long>(), c["n"].get<long long>(), out["nodes"].size());
  std::printf("%-12s %-8s %-22s %10s %9s %7s %9s %7s %9s  %s\n", "ID", "STATE", "ADDRESS", "DATA", "KEYS",
              "OWNS", "EFFECTIVE", "HINTS", "HINTS_FOR", "LAST_REPAIR");
  auto num = [](const json& v) { return v.is_null() ? std::string("?") : std::to_string(v.get<long long>()); };
  for (const json& n : out["nodes"]) {
    const std::string repair = n["last_repair_age_s"].is_null()
                                   ? (n.contains("info_error") ? "?" : "never")
                                   : Duration(n["last_repair_age_s"].get<double>()) + " ago";
    std::printf("%-12s %-8s %-22s %10s %9s %7s %9s %7s %9lld  %s\n", n["id"].get<std::string>().c_str(),
                n["state"].get<std::string>().c_str(), n["address"].get<std::string>().c_str(),
                n["data_bytes"].is_null() ? "?" : Bytes(n["data_bytes"].get<double>()).c_str(),
                num(n["keys"]).c_str(), Pct(n["ownership_pct"].get<double>()).c_str(),
                Pct(n["effective_ownership_pct"].get<double>()).c_str(), num(n["hints_held"]).c_str(),
                n["hints_for"].get<long long>(), repair.c_str());
  }
  for (const json& n : out["nodes"]) {
    if (n.contains("info_error") && n["state"] != "left") {
      std::printf("  %s: %s\n", n["id"].get<std::string>().c_str(), n["info_error"].get<std::string>().c_str());
    }
  }
  if (c["partitions_moving"].get<long long>() > 0) {
    std::printf("%lld partition(s) moving (itsuka-admin transfers)\n", c["partitions_moving"].get<long long>());
  }
}

// ---- transfers -----------------------------------------------------------------------

struct TransferRow {
  std::string dest, source, state, partitions;
  long long partitions_count = 0, keys = 0, bytes = 0, batches = 0, elapsed_ms = 0;
  long long est_keys = -1;  // -1: unknown
};

// Every member's ITSUKA.TRANSFERS; members that cannot be asked are listed in *errors.
std::vector<TransferRow> LoadTransfers(const Options& o, const ClusterView& v,
                                       std::vector<std::string>* errors) {
  std::vector<TransferRow> rows;
  for (const Member& m : v.members) {
    if (m.status == "left") continue;
    std::optional<Endpoint> e = ClientEndpoint(m);
    std::string err = "no client address";
    std::unique_ptr<Conn> c = e ? Conn::Open(*e, o.password, kTimeoutMs, &err) : nullptr;
    ReplyPtr r = c ? c->CallOk({"ITSUKA.TRANSFERS"}, &err) : nullptr;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      errors->push_back(m.id + ": " + (r ? "unexpected reply to ITSUKA.TRANSFERS" : err));
      continue;
    }
    const redisReply* sources = r->element[1];
    for (size_t i = 0; i < sources->elements; ++i) {
      auto kv = Pairs(sources->element[i]);
      TransferRow t{m.id, Field(kv, "source"), Field(kv, "state"), Field(kv, "partitions")};
      t.partitions_count = std::atoll(Field(kv, "partitions_count").c_str());
      t.keys = std::atoll(Field(kv, "keys").c_str());
      t.bytes = std::atoll(Field(kv, "bytes").c_str());
      t.batches = std::atoll(Field(kv, "batches").c_str());
      t.elapsed_ms = std::atoll(Field(kv, "elapsed_ms").c_str());
      rows.push_back(std::move(t));
    }
  }
  return rows;
}

// The keys a transfer will carry, estimated: the source's keys (RocksDB's estimate)
// times the share of the source's partitions it is asked for.
void EstimateTotals(const ClusterView& v, std::vector<TransferRow>* rows) {
  const std::map<std::string, Ownership> owners = Owners(v);
  for (TransferRow& t : *rows) {
    for (const Member& m : v.members) {
      if (m.id != t.source || !m.info_ok) continue;
      const int held = owners.count(t.source) ? owners.at(t.source).replica : 0;
      if (held > 0) t.est_keys = KeyspaceKeys(m.info) * t.partitions_count / held;
    }
  }
}

json TransferJson(const TransferRow& t) {
  const double rate = t.elapsed_ms > 0 ? 1000.0 * static_cast<double>(t.keys) / t.elapsed_ms : 0;
  json j = {{"destination", t.dest}, {"source", t.source},   {"state", t.state},
            {"partitions", t.partitions_count}, {"keys", t.keys}, {"bytes", t.bytes},
            {"batches", t.batches}, {"elapsed_ms", t.elapsed_ms}, {"keys_per_s", rate},
            {"estimated_keys", t.est_keys < 0 ? json(nullptr) : json(t.est_keys)}};
  if (t.state == "done") {
    j["progress_pct"] = 100.0;
    j["eta_s"] = 0;
  } else if (t.est_keys > 0) {
    // An estimate: never 100% before the source says the scan is done.
    j["progress_pct"] = std::min(99.0, 100.0 * static_cast<double>(t.keys) / static_cast<double>(t.est_keys));
    j["eta_s"] = rate > 0 ? json(std::max(0.0, (t.est_keys - t.keys) / rate)) : json(nullptr);
  } else {
    j["progress_pct"] = nullptr;
    j["eta_s"] = nullptr;
  }
  return j;
}

json TransfersJson(const ClusterView& v, const std::vector<TransferRow>& rows,
                   const std::vector<std::string>& errors) {
  long long moving = 0;
  for (size_t p = 0; p < v.replicas.size() && p < v.target_replicas.size(); ++p) {
    moving += v.replicas[p] != v.target_replicas[p];
  }
  json out = {{"ring_version", std::atoll(Field(v.ring, "version").c_str())},
              {"partitions_moving", moving},
              {"transfers", json::array()},
              {"errors", errors}};
  for (const TransferRow& t : rows) out["transfers"].push_back(TransferJson(t));
  return out;
}

std::string Bar(double pct, int width) {
  const int fill = static_cast<int>(width * std::clamp(pct, 0.0, 100.0) / 100.0);
  return "[" + std::string(static_cast<size_t>(fill), '#') + std::string(static_cast<size_t>(width - fill), '.') + "]";
}

void PrintTransfers(const json& out, bool tty) {
  std::printf("ring version %lld, %lld partition(s) moving\n", out["ring_version"].get<long long>(),
              out["partitions_moving"].get<long long>());
  if (out["transfers"].empty()) std::printf("no partition transfers in progress\n");
  else {
    std::printf("%-12s %-12s %-11s %5s %10s %10s %9s %7s %8s\n", "DESTINATION", "SOURCE", "STATE", "PARTS",
                "KEYS", "BYTES", "KEYS/S", "DONE", "ETA");
  }
  for (const json& t : out["transfers"]) {
    const std::string pct = t["progress_pct"].is_null() ? "?" : Pct(t["progress_pct"].get<double>());
    const std::string eta = t["eta_s"].is_null() ? "?" : Duration(t["eta_s"].get<double>());
    std::printf("%-12s %-12s %-11s %5lld %10lld %10s %9.0f %7s %8s", t["destination"].get<std::string>().c_str(),
                t["source"].get<std::string>().c_str(), t["state"].get<std::string>().c_str(),
                t["partitions"].get<long long>(), t["keys"].get<long long>(),
                Bytes(t["bytes"].get<double>()).c_str(), t["keys_per_s"].get<double>(), pct.c_str(), eta.c_str());
    if (tty && !t["progress_pct"].is_null()) std::printf(" %s", Bar(t["progress_pct"].get<double>(), 20).c_str());
    std::printf("\n");
  }
  for (const json& e : out["errors"]) std::printf("  not asked: %s\n", e.get<std::string>().c_str());
}

// One line over all transfers: a progress bar on a terminal, plain text otherwise.
void PrintProgressLine(const json& out, bool tty, double elapsed_s) {
  long long keys = 0, est = 0, bytes = 0, done = 0;
  double rate = 0;
  bool known = true;
  for (const json& t : out["transfers"]) {
    keys += t["keys"].get<long long>();
    bytes += t["bytes"].get<long long>();
    rate += t["keys_per_s"].get<double>();
    done += t["state"] == "done";
    if (t["estimated_keys"].is_null()) known = false;
    else est += std::max(t["estimated_keys"].get<long long>(), t["keys"].get<long long>());
  }
  const double pct = known && est > 0 ? std::min(99.0, 100.0 * keys / est) : 0;
  const std::string eta = known && rate > 0 ? Duration((est - keys) / rate) : "?";
  const size_t n = out["transfers"].size();
  if (tty) {
    std::printf("\r%s %s  %lld/%zu transfers done  %lld keys  %s  %.0f keys/s  ETA %s   ", Bar(pct, 30).c_str(),
                known ? Pct(pct).c_str() : "?", done, n, keys, Bytes(static_cast<double>(bytes)).c_str(), rate,
                eta.c_str());
  } else {
    std::printf("transfers: %lld/%zu done, %lld partition(s) moving, %lld keys, %s, %.0f keys/s, elapsed %s, eta %s\n",
                done, n, out["partitions_moving"].get<long long>(), keys, Bytes(static_cast<double>(bytes)).c_str(),
                rate, Duration(elapsed_s).c_str(), eta.c_str());
  }
  std::fflush(stdout);
}

// ---- snapshot ------------------------------------------------------------------------

std::string DefaultSnapshotId() {
  char b[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(b, sizeof b, "snap-%Y%m%dT%H%M%SZ", &tm);
  return b;
}

// Starts the snapshot on one member (ITSUKA.SNAPSHOT CREATE); the connection is kept
// in *conn for the STATUS polls. A row with ok=false and the error if it failed.
json SnapshotStart(const Options& o, const Member& m, const std::string& id, std::unique_ptr<Conn>* conn) {
  json row = {{"node_id", m.id}, {"ok", false}};
  std::optional<Endpoint> e = ClientEndpoint(m);
  std::string err = "no client address";
  *conn = e ? Conn::Open(*e, o.password, kTimeoutMs, &err) : nullptr;
  ReplyPtr r = *conn ? (*conn)->CallOk({"ITSUKA.SNAPSHOT", "CREATE", id}, &err) : nullptr;
  if (!r) {
    row["error"] = err;
    conn->reset();
  }
  return row;
}

// Polls ITSUKA.SNAPSHOT STATUS until the member's checkpoint thread is done (bounded);
// fills the row.
void SnapshotWait(Conn& conn, const std::string& id, json* row) {
  std::string err;
  for (int i = 0; i < 6000; ++i) {  // 10 minutes
    ReplyPtr r = conn.CallOk({"ITSUKA.SNAPSHOT", "STATUS", id}, &err);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
      (*row)["error"] = r ? "unexpected reply to ITSUKA.SNAPSHOT STATUS" : err;
      return;
    }
    auto kv = Pairs(r.get());
    if (Field(kv, "state") == "done") {
      (*row)["ok"] = true;
      (*row)["path"] = Field(kv, "path");
      (*row)["files"] = std::atoll(Field(kv, "files").c_str());
      (*row)["bytes"] = std::atoll(Field(kv, "bytes").c_str());
      (*row)["ring_version"] = std::atoll(Field(kv, "ring_version").c_str());
      (*row)["checkpoint_ms"] = std::atof(Field(kv, "checkpoint_ms").c_str());
      return;
    }
    SleepMs(100);
  }
  (*row)["error"] = "the checkpoint did not finish within 10 minutes";
}

int SnapshotList(const Options& o, const ClusterView& v) {
  json out = json::object();
  for (const Member& m : v.members) {
    if (m.status == "left") continue;
    std::optional<Endpoint> e = ClientEndpoint(m);
    std::string err = "no client address";
    std::unique_ptr<Conn> c = e ? Conn::Open(*e, o.password, kTimeoutMs, &err) : nullptr;
    ReplyPtr r = c ? c->CallOk({"ITSUKA.SNAPSHOT", "LIST"}, &err) : nullptr;
    json ids = json::array();
    if (r && r->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i < r->elements; ++i) ids.push_back(std::string(r->element[i]->str, r->element[i]->len));
      out[m.id] = ids;
    } else {
      out[m.id] = nullptr;
    }
    if (!o.json) {
      std::string line;
      for (const auto& id : ids) line += " " + id.get<std::string>();
      std::printf("%-12s %s\n", m.id.c_str(), out[m.id].is_null() ? (" (not asked: " + err + ")").c_str()
                                                                   : (line.empty() ? " (none)" : line.c_str()));
    }
  }
  if (o.json) std::printf("%s\n", out.dump().c_str());
  return 0;
}

// ---- restore -------------------------------------------------------------------------

struct RestoreArgs {
  std::string snapshot, data_dir, node_id, secret_file, cluster_id;
};

bool ParseRestoreArgs(const std::vector<std::string>& args, RestoreArgs* r) {
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    const std::string& k = args[i];
    const std::string& val = args[i + 1];
    if (k == "--snapshot") r->snapshot = val;
    else if (k == "--data-dir") r->data_dir = val;
    else if (k == "--node-id") r->node_id = val;
    else if (k == "--secret-file") r->secret_file = val;
    else if (k == "--cluster-id") r->cluster_id = val;
    else return false;
  }
  return args.size() % 2 == 0 && !r->snapshot.empty() && !r->data_dir.empty() && !r->node_id.empty();
}

// The cluster id of a secret file ("cluster-id <hex>" line), "" if none.
std::string SecretClusterId(const std::string& path, std::string* err) {
  std::ifstream f(path);
  if (!f) {
    *err = "cannot read --secret-file " + path;
    return "";
  }
  for (std::string line; std::getline(f, line);) {
    std::stringstream ss(line);
    std::string k, v;
    if (ss >> k >> v && k == "cluster-id") return v;
  }
  *err = "no cluster-id line in " + path;
  return "";
}

// Checks the manifest against what the operator says the node is; "" if it matches.
std::string CheckManifest(const json& man, const RestoreArgs& a, const fs::path& db) {
  if (!man.is_object() || man.value("format", 0) != 1) return "not a snapshot manifest of format 1";
  if (man.value("node_id", "") != a.node_id) {
    return "the snapshot is of node '" + man.value("node_id", "") + "', not '" + a.node_id + "'";
  }
  std::string want = a.cluster_id, err;
  if (!a.secret_file.empty()) {
    want = SecretClusterId(a.secret_file, &err);
    if (!err.empty()) return err;
  }
  const std::string have = man.value("cluster_id", "");
  if (!want.empty() && !have.empty() && want != have) {
    return "the snapshot belongs to cluster " + have + ", not " + want;
  }
  if (!man.contains("files") || !man["files"].is_array() || man["files"].empty()) return "the manifest lists no files";
  for (const json& f : man["files"]) {
    const std::string name = f.value("name", "");
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      return "bad file name in the manifest";
    }
    std::error_code ec;
    const uintmax_t size = fs::file_size(db / name, ec);
    if (ec || size != f.value("bytes", uintmax_t{0})) {
      return "snapshot file " + (db / name).string() + (ec ? " is missing" : " has the wrong size");
    }
  }
  return "";
}

// Copies the listed files into a new directory beside the data directory, then renames
// it into place (an empty data directory is replaced): a failed copy leaves no
// half-restored data directory.
std::string CopyInto(const json& man, const fs::path& db, const fs::path& data_dir, uint64_t* bytes) {
  std::error_code ec;
  if (fs::exists(data_dir, ec)) {
    if (!fs::is_directory(data_dir, ec) || !fs::is_empty(data_dir, ec)) {
      return "data directory " + data_dir.string() + " is not empty: restore needs an empty one (stop the "
             "node and move its data away first)";
    }
  }
  const fs::path tmp = data_dir.string() + ".restoring";
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return "cannot create " + tmp.string() + ": " + ec.message();
  for (const json& f : man["files"]) {
    const std::string name = f["name"].get<std::string>();
    fs::copy_file(db / name, tmp / name, ec);
    if (ec) {
      fs::remove_all(tmp, ec);
      return "copying " + name + ": " + ec.message();
    }
    *bytes += f.value("bytes", uint64_t{0});
  }
  fs::remove(data_dir, ec);  // empty (checked above), or absent
  fs::rename(tmp, data_dir, ec);
  if (ec) return "renaming " + tmp.string() + " to " + data_dir.string() + ": " + ec.message();
  return "";
}

}  // namespace

std::string Duration(double s) {
  char b[32];
  const long long t = static_cast<long long>(s + 0.5);
  if (t >= 3600) {
    std::snprintf(b, sizeof b, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  } else {
    std::snprintf(b, sizeof b, "%lld:%02lld", t / 60, t % 60);
  }
  return b;
}

void SleepMs(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000};
  ::nanosleep(&ts, nullptr);
}

int StatusCmd(const Options& o) {
  if (!o.args.empty()) return 2;
  ClusterView v;
  if (!LoadHostView(o, &v)) return 1;
  LoadMemberInfo(&v, o.password, kTimeoutMs);
  const std::map<std::string, Ownership> owners = Owners(v);
  const std::map<std::string, long long> hints_for = HintsFor(v);
  long long moving = 0;
  for (size_t p = 0; p < v.replicas.size() && p < v.target_replicas.size(); ++p) {
    moving += v.replicas[p] != v.target_replicas[p];
  }
  json out = {{"cluster",
               {{"view_from", v.view_from},
                {"ring_version", std::atoll(Field(v.ring, "version").c_str())},
                {"partitions", std::atoll(Field(v.ring, "partitions").c_str())},
                {"n", std::atoll(Field(v.ring, "n").c_str())},
                {"partitions_moving", moving}}},
              {"nodes", json::array()}};
  for (const Member& m : v.members) out["nodes"].push_back(StatusRow(v, m, owners, hints_for));
  if (o.json) std::printf("%s\n", out.dump().c_str());
  else PrintStatus(out);
  return 0;
}

int TransfersCmd(const Options& o) {
  bool wait = false;
  for (const std::string& a : o.args) {
    if (a == "--wait") wait = true;
    else return 2;
  }
  const bool tty = ::isatty(STDOUT_FILENO) == 1 && !o.json;
  const auto t0 = std::chrono::steady_clock::now();
  long long last_plain = -1;
  for (;;) {
    ClusterView v;
    if (!LoadHostView(o, &v)) return 1;
    LoadMemberInfo(&v, o.password, kTimeoutMs, "keyspace");
    std::vector<std::string> errors;
    std::vector<TransferRow> rows = LoadTransfers(o, v, &errors);
    EstimateTotals(v, &rows);
    const json out = TransfersJson(v, rows, errors);
    const bool active = out["partitions_moving"].get<long long>() > 0 || !rows.empty();
    if (!wait || !active) {
      if (wait && tty) std::printf("\n");
      if (o.json) std::printf("%s\n", out.dump().c_str());
      else PrintTransfers(out, tty);
      return 0;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (tty) {
      PrintProgressLine(out, true, elapsed);
    } else if (!o.json && static_cast<long long>(elapsed / 5) != last_plain) {
      last_plain = static_cast<long long>(elapsed / 5);
      PrintProgressLine(out, false, elapsed);
    }
    SleepMs(500);
  }
}

int SnapshotCmd(const Options& o) {
  ClusterView v;
  if (o.args.size() > 1) return 2;
  if (!LoadHostView(o, &v)) return 1;
  if (o.args.size() == 1 && o.args[0] == "--list") return SnapshotList(o, v);
  if (o.args.size() == 1 && o.args[0][0] == '-') return 2;
  const std::string id = o.args.empty() ? DefaultSnapshotId() : o.args[0];
  json out = {{"snapshot_id", id}, {"complete", true}, {"nodes", json::array()}};
  // Every member starts its checkpoint first (so they are taken close together), then
  // each is waited for.
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<json> rows;
  for (const Member& m : v.members) {
    if (m.status == "left") continue;
    conns.emplace_back();
    rows.push_back(SnapshotStart(o, m, id, &conns.back()));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    if (conns[i]) SnapshotWait(*conns[i], id, &rows[i]);
    if (!rows[i]["ok"].get<bool>()) out["complete"] = false;
    out["nodes"].push_back(rows[i]);
  }
  if (o.json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("snapshot %s\n", id.c_str());
    std::printf("%-12s %-6s %6s %10s %9s  %s\n", "NODE", "RESULT", "FILES", "BYTES", "TOOK", "PATH / ERROR");
    for (const json& r : out["nodes"]) {
      if (r["ok"].get<bool>()) {
        char took[32];
        std::snprintf(took, sizeof took, "%.1f ms", r["checkpoint_ms"].get<double>());
        std::printf("%-12s %-6s %6lld %10s %9s  %s\n", r["node_id"].get<std::string>().c_str(), "ok",
                    r["files"].get<long long>(), Bytes(r["bytes"].get<double>()).c_str(), took,
                    r["path"].get<std::string>().c_str());
      } else {
        std::printf("%-12s %-6s %6s %10s %9s  %s\n", r["node_id"].get<std::string>().c_str(), "FAILED", "-", "-",
                    "-", r["error"].get<std::string>().c_str());
      }
    }
    if (!out["complete"].get<bool>()) std::printf("snapshot %s is INCOMPLETE: not every member took it\n", id.c_str());
  }
  return out["complete"].get<bool>() ? 0 : 1;
}

int RestoreCmd(const Options& o) {
  RestoreArgs a;
  if (!ParseRestoreArgs(o.args, &a)) return 2;
  const fs::path snap(a.snapshot);
  std::ifstream f(snap / "manifest.json");
  if (!f) return Fail("no manifest.json in " + snap.string());
  std::stringstream text;
  text << f.rdbuf();
  const json man = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (man.is_discarded()) return Fail("manifest.json in " + snap.string() + " is not valid JSON");
  std::string err;
  try {
    err = CheckManifest(man, a, snap / "db");
  } catch (const json::exception& e) {  // a field of the wrong type
    err = std::string("bad manifest: ") + e.what();
  }
  if (!err.empty()) return Fail("refusing to restore: " + err);
  uint64_t bytes = 0;
  err = CopyInto(man, snap / "db", fs::path(a.data_dir), &bytes);
  if (!err.empty()) return Fail("restore failed: " + err);
  const std::string id = man.value("snapshot_id", "");
  if (o.json) {
    std::printf("%s\n", json({{"snapshot_id", id}, {"node_id", a.node_id}, {"data_dir", a.data_dir},
                              {"files", man["files"].size()}, {"bytes", bytes},
                              {"ring_version", man.value("ring_version", 0)}})
                            .dump()
                            .c_str());
  } else {
    std::printf("restored snapshot %s of %s (%zu files, %s) into %s\n"
                "next: start the node, then run `itsuka-admin --host <its address> repair` so it gets "
                "the writes made since the snapshot\n",
                id.c_str(), a.node_id.c_str(), man["files"].size(), Bytes(static_cast<double>(bytes)).c_str(),
                a.data_dir.c_str());
  }
  return 0;
}

}  // namespace itsuka::admin
