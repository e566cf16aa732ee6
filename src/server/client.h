// One Redis-protocol client connection: parses requests, runs commands, buffers the
// replies until the node's next commit, and enforces the per-client limits.
//
// Thread-compatible: owned by the Node and used from the event-loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "itsuka/config.h"
#include "net/tcp.h"
#include "server/commands.h"
#include "server/session.h"
#include "server/stats.h"
#include "wire/resp.h"

namespace itsuka::server {

// What a client needs from the node that owns it.
class ClientHost {
 public:
  virtual ~ClientHost() = default;
  virtual const Config& config() const = 0;
  virtual Stats& stats() = 0;
  virtual CommandExecutor& executor() = 0;
  virtual int64_t NowMs() const = 0;
  // The client has replies to send after the next commit.
  virtual void MarkDirty(uint64_t client_id) = 0;
  // The connection is closed; the host destroys the client.
  virtual void OnClientClosed(uint64_t client_id) = 0;
};

class Client {
 public:
  Client(ClientHost& host, uint64_t id, std::unique_ptr<net::TcpConnection> conn);

  // Sends the buffered replies (called after the commit that covers them).
  void Flush();
  // Drops the buffered replies and closes (a commit failed: their outcome is unknown).
  void Abort();
  // Stops reading; closes once the buffered replies are sent (graceful shutdown).
  void Drain();
  void CloseNow() { conn_->Close(); }

  const Session& session() const { return session_; }

 private:
  void OnRead(std::string_view data);
  wire::RespLimits Limits() const;
  bool OverOutputLimit() const;

  ClientHost& host_;
  std::unique_ptr<net::TcpConnection> conn_;
  Session session_;
  wire::RespParser parser_;
  std::vector<std::string> args_;
  std::string out_;
};

}  // namespace itsuka::server
