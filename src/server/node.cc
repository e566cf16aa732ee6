#include "server/node.h"

#include <signal.h>

#include <filesystem>

#include "common/log.h"
#include "storage/rocksdb_engine.h"
#include "wire/resp.h"

namespace itsuka::server {

Node::Node(const Config& config) : config_(config), tick_(loop_, [this] { OnTick(); }) {}

Node::~Node() {
  clients_.clear();
  listener_.reset();
  signals_.clear();
}

Result<std::unique_ptr<Node>> Node::Create(const Config& config) {
  std::unique_ptr<Node> node(new Node(config));
  Status st = node->Open();
  if (!st.ok()) return st;
  return node;
}

Status Node::Open() {
  std::error_code ec;
  std::filesystem::create_directories(config_.data_dir, ec);
  if (ec) {
    return Status::IOError("cannot create node.data_dir '" + config_.data_dir + "': " + ec.message());
  }
  storage::RocksOptions ro;
  ro.path = config_.data_dir;
  ro.block_cache_mb = static_cast<size_t>(config_.block_cache_mb);
  ro.write_buffer_mb = static_cast<size_t>(config_.write_buffer_mb);
  Result<std::unique_ptr<Engine>> engine = storage::OpenRocksEngine(ro);
  if (!engine.ok()) return engine.status();
  engine_ = std::move(engine).value();

  // The data directory remembers whose it is: vector clocks name this node, so a data
  // directory must never be served under another identity.
  std::string owner;
  Status st = engine_->Get(Column::kMeta, "node_id", &owner);
  if (st.ok() && owner != config_.node_id) {
    return Status::InvalidArgument("node.data_dir '" + config_.data_dir + "' belongs to node '" +
                                   owner + "', but node.id is '" + config_.node_id + "'");
  }
  if (st.IsNotFound()) {
    WriteBatch b;
    b.Put(Column::kMeta, "node_id", config_.node_id);
    st = engine_->Write(b, /*sync=*/true);
  }
  if (!st.ok()) return st;

  store_ = std::make_unique<Store>(*engine_, config_.durability == "fsync");
  stats_.start_wall_ms = clock_.WallMs();
  stats_.start_mono_ms = clock_.MonotonicMs();
  executor_ = std::make_unique<CommandExecutor>(config_, *store_, stats_, clock_);

  Result<std::unique_ptr<net::TcpListener>> listener = net::TcpListener::Listen(
      loop_, config_.bind, static_cast<int>(config_.port), 511,
      [this](std::unique_ptr<net::TcpConnection> conn) { OnAccept(std::move(conn)); });
  if (!listener.ok()) {
    return Status::IOError("server.bind/server.port: " + listener.status().message());
  }
  listener_ = std::move(listener).value();
  return Status::Ok();
}

int Node::Run() {
  loop_.SetAfterIoHook([this] { AfterIo(); });
  tick_.Start(1000, 1000);
  signals_.push_back(std::make_unique<net::SignalWatcher>(loop_, SIGTERM, [this] {
    BeginShutdown("SIGTERM");
  }));
  signals_.push_back(std::make_unique<net::SignalWatcher>(loop_, SIGINT, [this] {
    BeginShutdown("SIGINT");
  }));
  ::signal(SIGPIPE, SIG_IGN);
  LOG_INFO << "itsuka node " << config_.node_id << " serving on " << config_.bind << ":"
           << port() << " (data " << config_.data_dir << ", durability " << config_.durability
           << ")";
  loop_.Run();
  // Anything staged by the last callbacks is committed before RocksDB closes.
  Status st = store_->Commit();
  if (!st.ok()) {
    LOG_ERROR << "final commit failed: " << st.ToString();
    exit_code_ = 1;
  }
  LOG_INFO << "node " << config_.node_id << " stopped";
  return exit_code_;
}

void Node::OnAccept(std::unique_ptr<net::TcpConnection> conn) {
  ++stats_.connections_received;
  if (shutting_down_) {
    conn->Close();
    return;
  }
  if (clients_.size() >= static_cast<size_t>(config_.max_clients)) {
    ++stats_.rejected_connections;
    std::string err;
    wire::resp::AppendError(&err, "ERR max number of clients reached");
    conn->Write(err);
    conn->Close();  // the reply was handed to the kernel by Write's direct attempt
    return;
  }
  uint64_t id = next_client_id_++;
  clients_.emplace(id, std::make_unique<Client>(*this, id, std::move(conn)));
  stats_.connected_clients = clients_.size();
}

void Node::OnClientClosed(uint64_t client_id) {
  clients_.erase(client_id);
  stats_.connected_clients = clients_.size();
  if (shutting_down_ && clients_.empty()) loop_.Stop();
}

void Node::AfterIo() {
  if (dirty_.empty() && !store_->HasStaged()) return;
  Status st = store_->Commit();
  std::vector<uint64_t> dirty;
  dirty.swap(dirty_);
  if (!st.ok()) {
    // Nothing from this round may leave: replies to writes would acknowledge what was
    // not stored, and replies to reads may show it. Those clients see a closed
    // connection, i.e. an unknown outcome.
    ++stats_.commit_failures;
    LOG_ERROR << "commit failed: " << st.ToString() << "; closing " << dirty.size()
              << " client(s) whose replies depended on it";
    for (uint64_t id : dirty) {
      auto it = clients_.find(id);
      if (it != clients_.end()) it->second->Abort();
    }
    return;
  }
  for (uint64_t id : dirty) {
    auto it = clients_.find(id);
    if (it != clients_.end()) it->second->Flush();
  }
}

void Node::OnTick() {
  stats_.instantaneous_ops_per_sec = stats_.commands_processed - commands_at_last_tick_;
  commands_at_last_tick_ = stats_.commands_processed;
  const int64_t now = loop_.NowMs();
  if (shutting_down_) {
    if (now >= shutdown_deadline_ms_) {
      LOG_WARN << "shutdown: closing " << clients_.size() << " client(s) still sending replies";
      std::vector<Client*> all;
      for (auto& [id, c] : clients_) all.push_back(c.get());
      for (Client* c : all) c->CloseNow();
    }
    return;
  }
  if (config_.idle_timeout_s > 0) {
    const int64_t limit_ms = config_.idle_timeout_s * 1000;
    for (auto& [id, c] : clients_) {
      if (now - c->session().last_active_mono_ms > limit_ms) {
        ++stats_.idle_disconnects;
        c->CloseNow();
      }
    }
  }
}

void Node::BeginShutdown(const char* why) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_deadline_ms_ = loop_.NowMs() + config_.shutdown_timeout_s * 1000;
  LOG_INFO << why << ": shutting down; " << clients_.size() << " client(s) connected";
  listener_.reset();
  signals_.clear();
  // Requests already received have been executed; their replies go out after the
  // commit in AfterIo, then each connection closes.
  for (auto& [id, c] : clients_) c->Drain();
  if (clients_.empty()) loop_.Stop();
}

}  // namespace itsuka::server
