#include "server/client.h"

#include <algorithm>

#include "common/log.h"

namespace itsuka::server {

Client::Client(ClientHost& host, uint64_t id, std::unique_ptr<net::TcpConnection> conn)
    : host_(host), conn_(std::move(conn)) {
  session_.id = id;
  session_.peer = conn_->peer();
  session_.authenticated = host_.config().requirepass.empty();
  session_.created_mono_ms = session_.last_active_mono_ms = host_.NowMs();
  parser_.set_limits(Limits());
  conn_->Start([this](std::string_view data) { OnRead(data); },
               [this] { host_.OnClientClosed(session_.id); });
}

wire::RespLimits Client::Limits() const {
  const Config& c = host_.config();
  wire::RespLimits l;
  l.max_inline_bytes = static_cast<size_t>(c.max_inline_bytes);
  // Before AUTH the bounds are much stricter, so an unauthenticated peer cannot make
  // the server buffer much.
  l.max_bulk_bytes = static_cast<size_t>(
      session_.authenticated ? c.max_bulk_bytes : std::min(c.max_bulk_bytes, c.unauth_max_bulk_bytes));
  l.max_args = static_cast<size_t>(
      session_.authenticated ? c.max_args : std::min(c.max_args, c.unauth_max_args));
  return l;
}

bool Client::OverOutputLimit() const {
  return out_.size() + conn_->queued_bytes() >
         static_cast<size_t>(host_.config().max_output_buffer_bytes);
}

void Client::OnRead(std::string_view data) {
  Stats& stats = host_.stats();
  stats.net_input_bytes += data.size();
  session_.last_active_mono_ms = host_.NowMs();
  if (session_.close_after_reply) return;
  parser_.Feed(data);
  while (true) {
    wire::RespParser::Outcome o = parser_.Next(&args_);
    if (o == wire::RespParser::Outcome::kNeedMore) break;
    if (o == wire::RespParser::Outcome::kError) {
      ++stats.protocol_errors;
      LOG_INFO << "client " << session_.peer << ": " << parser_.error() << "; closing";
      wire::resp::AppendError(&out_, "ERR " + parser_.error());
      session_.close_after_reply = true;
      break;
    }
    const bool was_authenticated = session_.authenticated;
    host_.executor().Execute(session_, args_, &out_);
    if (session_.authenticated != was_authenticated) parser_.set_limits(Limits());
    if (OverOutputLimit()) {
      ++stats.output_buffer_disconnects;
      LOG_WARN << "client " << session_.peer << ": output buffer over "
               << host_.config().max_output_buffer_bytes << " bytes; closing";
      out_.clear();
      session_.close_after_reply = true;
      conn_->Close();
      return;
    }
    if (session_.close_after_reply) break;
  }
  if (!session_.close_after_reply &&
      parser_.buffered() > static_cast<size_t>(host_.config().max_query_buffer_bytes)) {
    ++stats.query_buffer_disconnects;
    LOG_WARN << "client " << session_.peer << ": query buffer over "
             << host_.config().max_query_buffer_bytes << " bytes; closing";
    wire::resp::AppendError(&out_, "ERR query buffer limit exceeded (limits.max_query_buffer_bytes)");
    session_.close_after_reply = true;
  }
  if (session_.close_after_reply) conn_->PauseReading();
  if (!out_.empty() || session_.close_after_reply) host_.MarkDirty(session_.id);
}

void Client::Flush() {
  session_.staged_write = false;
  if (!out_.empty()) {
    host_.stats().net_output_bytes += out_.size();
    conn_->Write(out_);
    out_.clear();
  }
  if (session_.close_after_reply) conn_->CloseAfterWrites();
}

void Client::Abort() {
  out_.clear();
  session_.close_after_reply = true;
  conn_->Close();
}

void Client::Drain() {
  session_.close_after_reply = true;
  conn_->PauseReading();
  host_.MarkDirty(session_.id);
}

}  // namespace itsuka::server
