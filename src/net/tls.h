// TLS settings for TCP connections (OpenSSL). A TlsContext holds a certificate, its
// private key and the CA that the other side's certificate must chain to; it is given
// to TcpListener::Listen (the accepting side) or TcpConnection::Connect (the dialling
// side), and every connection made with it speaks TLS 1.2 or later.
//
// What is verified:
// - A dialling connection always verifies the server's certificate chain against the
//   CA, and presents its own certificate (so a peer that requires client certificates
//   accepts it).
// - An accepting connection asks for the client's certificate according to
//   `client_certs`: kRequire refuses a client without a certificate that chains to the
//   CA, kOptional verifies one if offered, kNone does not ask.
// Host names and IP addresses in the certificates are not checked: trust is "holds a
// certificate signed by this CA", as Redis does for its replication and cluster links.
//
// Renegotiation is off and no session tickets are issued. A handshake must finish
// within handshake_timeout_ms. Failures close the connection, are logged with the
// other side's address and counted in stats().
//
// Create() loads and checks the files at once; errors name the file at fault (missing,
// not a certificate or key, key not matching the certificate). A context may be shared
// by any number of connections; it belongs to the loop's thread (the counters are
// plain integers).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "itsuka/status.h"

namespace itsuka::net {

class TlsContext {
 public:
  enum class ClientCerts { kNone, kOptional, kRequire };
  struct Options {
    std::string cert_file;     // PEM certificate (chain), leaf first
    std::string key_file;      // PEM private key of that certificate
    std::string ca_cert_file;  // PEM CA certificate(s); may be empty only with kNone
    ClientCerts client_certs = ClientCerts::kRequire;
    uint64_t handshake_timeout_ms = 10000;
  };
  struct Stats {
    uint64_t handshakes = 0;          // completed
    uint64_t handshake_failures = 0;  // refused, broken or timed out before completing
    uint64_t errors = 0;              // TLS errors after the handshake (connection closed)
  };

  static Result<std::shared_ptr<TlsContext>> Create(const Options& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  const Options& options() const { return options_; }
  const Stats& stats() const { return stats_; }
  Stats& mutable_stats() { return stats_; }
  // The certificate's subject and expiry, e.g. "CN=node1, expires Dec  1 09:00:00 2027 GMT".
  const std::string& description() const { return description_; }

  struct Impl;
  Impl* impl() const { return impl_.get(); }

 private:
  TlsContext();
  Options options_;
  Stats stats_;
  std::string description_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace itsuka::net
