// TLS over net::TcpListener / net::TcpConnection on loopback: loading and checking the
// certificate files, an echo through the memory-BIO layer, refused handshakes (no
// certificate, another CA, plain TCP, garbage, silence), and the bound on what one
// paused connection makes the layer hold. Certificates come from tools/make-certs.
#include "net/tls.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <chrono>
#include <thread>
#include <fstream>
#include <functional>
#include <string>

#include "net/loop.h"
#include "net/tcp.h"

namespace itsuka::net {
namespace {

namespace fs = std::filesystem;

// A directory of certificates made by tools/make-certs, removed at the end.
class CertDir {
 public:
  CertDir() {
    char tmpl[] = "/tmp/itsuka-tls-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    const std::string cmd = std::string(ITSUKA_SOURCE_DIR) + "/tools/make-certs " + dir_ + " > /dev/null";
    ok_ = std::system(cmd.c_str()) == 0;
  }
  ~CertDir() { fs::remove_all(dir_); }
  bool ok() const { return ok_; }
  std::string operator()(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir() const { return dir_; }

 private:
  std::string dir_;
  bool ok_ = false;
};

TlsContext::Options NodeOptions(const CertDir& d) {
  TlsContext::Options o;
  o.cert_file = d("node.crt");
  o.key_file = d("node.key");
  o.ca_cert_file = d("ca.crt");
  return o;
}

// Runs the loop until cond() holds or timeout_ms passed; returns cond().
bool RunUntil(Loop& loop, const std::function<bool()>& cond, int64_t timeout_ms = 5000) {
  const int64_t deadline = loop.NowMs() + timeout_ms;
  Timer check(loop, [&] {
    if (cond() || loop.NowMs() >= deadline) loop.Stop();
  });
  check.Start(1, 2);
  loop.Run();
  return cond();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(TlsContext, LoadsMatchingFiles) {
  CertDir d;
  ASSERT_TRUE(d.ok());
  Result<std::shared_ptr<TlsContext>> tls = TlsContext::Create(NodeOptions(d));
  ASSERT_TRUE(tls.ok()) << tls.status().ToString();
  EXPECT_NE((*tls)->description().find("CN=itsuka node"), std::string::npos) << (*tls)->description();
}

TEST(TlsContext, ErrorsNameTheFileAtFault) {
  CertDir d;
  ASSERT_TRUE(d.ok());
  auto error = [](const TlsContext::Options& o) {
    Result<std::shared_ptr<TlsContext>> tls = TlsContext::Create(o);
    return tls.ok() ? std::string("(loaded)") : tls.status().message();
  };
  TlsContext::Options o = NodeOptions(d);
  o.cert_file = d("missing.crt");
  EXPECT_NE(error(o).find("tls.cert_file': cannot read '" + d("missing.crt")), std::string::npos) << error(o);

  o = NodeOptions(d);
  WriteFile(d("garbage.pem"), "not a certificate\n");
  o.cert_file = d("garbage.pem");
  EXPECT_NE(error(o).find("'" + d("garbage.pem") + "' is not a PEM certificate"), std::string::npos) << error(o);

  o = NodeOptions(d);
  o.key_file = d("garbage.pem");
  EXPECT_NE(error(o).find("'" + d("garbage.pem") + "' is not a PEM private key"), std::string::npos) << error(o);

  o = NodeOptions(d);
  o.key_file = d("client.key");  // a real key, but not node.crt's
  EXPECT_NE(error(o).find("'" + d("client.key") + "' does not match the certificate in '" + d("node.crt")),
            std::string::npos) << error(o);

  o = NodeOptions(d);
  o.ca_cert_file = d("garbage.pem");
  EXPECT_NE(error(o).find("tls.ca_cert_file': '" + d("garbage.pem") + "' holds no PEM CA"), std::string::npos)
      << error(o);

  o = NodeOptions(d);
  o.ca_cert_file = "";
  EXPECT_NE(error(o).find("tls.ca_cert_file' is empty"), std::string::npos) << error(o);
  o.client_certs = TlsContext::ClientCerts::kNone;  // then no CA is needed
  EXPECT_EQ(error(o), "(loaded)");
}

// An echo server on an ephemeral loopback port.
struct EchoServer {
  EchoServer(Loop& loop, std::shared_ptr<TlsContext> tls) {
    auto l = TcpListener::Listen(loop, "127.0.0.1", 0, 16, [this](std::unique_ptr<TcpConnection> c) {
      TcpConnection* raw = c.get();
      conns.push_back(std::move(c));
      raw->Start([this, raw](std::string_view data) {
        received += data.size();
        ++reads;
        max_read = std::max(max_read, data.size());
        if (pause_on_read) raw->PauseReading();
        raw->Write(data);
      }, [this] { ++closed; });
    }, std::move(tls));
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    listener = std::move(l).value();
  }
  std::unique_ptr<TcpListener> listener;
  std::vector<std::unique_ptr<TcpConnection>> conns;
  size_t received = 0, reads = 0, max_read = 0;
  int closed = 0;
  bool pause_on_read = false;
};

struct ClientEnd {
  std::unique_ptr<TcpConnection> conn;
  std::string got;
  bool connected = false, failed = false, closed = false;
  std::string error;
  void Open(Loop& loop, int port, std::shared_ptr<TlsContext> tls) {
    conn = TcpConnection::Connect(loop, "127.0.0.1", port, [this](Status st) {
      connected = st.ok();
      failed = !st.ok();
      error = st.message();
    }, std::move(tls));
    conn->Start([this](std::string_view d) { got.append(d); }, [this] { closed = true; });
  }
};

TEST(TlsConnection, EchoesThroughTheTlsLayer) {
  CertDir d;
  ASSERT_TRUE(d.ok());
  Loop loop;
  auto server_tls = TlsContext::Create(NodeOptions(d)).value();
  auto client_tls = TlsContext::Create(NodeOptions(d)).value();
  EchoServer server(loop, server_tls);
  ClientEnd client;
  client.Open(loop, server.listener->port(), client_tls);
  // Written before the handshake finished: held, counted, sent once it is done.
  std::string payload(1 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 131 + (i >> 11));
  client.conn->Write(payload);
  EXPECT_GE(client.conn->queued_bytes(), payload.size());
  EXPECT_TRUE(client.conn->tls());
  ASSERT_TRUE(RunUntil(loop, [&] { return client.got.size() >= payload.size() || client.closed; }));
  EXPECT_TRUE(client.connected) << client.error;
  EXPECT_EQ(client.got, payload);
  EXPECT_EQ(server_tls->stats().handshakes, 1u);
  EXPECT_EQ(client_tls->stats().handshakes, 1u);
  EXPECT_EQ(server_tls->stats().handshake_failures, 0u);
  // A clean close sends close_notify: the server sees the end and closes its side.
  client.conn->CloseAfterWrites();
  ASSERT_TRUE(RunUntil(loop, [&] { return server.closed == 1; }));
  EXPECT_EQ(server_tls->stats().errors, 0u);
}

// One socket read (64 KiB) of ciphertext, plus the rest of a record it completed.
constexpr size_t kOneRead = (64 << 10) + (17 << 10);

TEST(TlsConnection, PausedReadingHoldsAtMostOneRead) {
  CertDir d;
  ASSERT_TRUE(d.ok());
  Loop loop;
  auto server_tls = TlsContext::Create(NodeOptions(d)).value();
  EchoServer server(loop, server_tls);
  server.pause_on_read = true;
  ClientEnd client;
  client.Open(loop, server.listener->port(), TlsContext::Create(NodeOptions(d)).value());
  client.conn->Write(std::string(8 << 20, 'x'));
  ASSERT_TRUE(RunUntil(loop, [&] { return server.reads > 0; }));
  RunUntil(loop, [] { return false; }, 300);
  // The server paused in its first on_read: nothing more was decrypted or delivered,
  // and that one delivery was at most one socket read's worth.
  EXPECT_EQ(server.reads, 1u);
  EXPECT_LE(server.max_read, kOneRead);
  server.conns[0]->ResumeReading();
  ASSERT_TRUE(RunUntil(loop, [&] { return server.reads > 1; }));
  EXPECT_LE(server.max_read, kOneRead);
}

TEST(TlsConnection, ClientWithCertificateOfAnotherCaIsRefused) {
  CertDir d;
  ASSERT_TRUE(d.ok());
  Loop loop;
  auto server_tls = TlsContext::Create(NodeOptions(d)).value();  // kRequire
  EchoServer server(loop, server_tls);
  // A client that trusts the server's CA but whose own certificate another CA signed.
  // (A client with no certificate at all is redis-cli without --cert: see
  // tests/integration/test_tls.py.)
  CertDir other;
  ASSERT_TRUE(other.ok());
  TlsContext::Options o = NodeOptions(other);
  o.ca_cert_file = d("ca.crt");
  ClientEnd client;
  client.Open(loop, server.listener->port(), TlsContext::Create(o).value());
  client.conn->Write("PING\r\n");
  ASSERT_TRUE(RunUntil(loop, [&] { return client.closed; }));
  EXPECT_EQ(server.received, 0u);
  EXPECT_EQ(server_tls->stats().handshakes, 0u);
  EXPECT_EQ(server_tls->stats().handshake_failures, 1u);
}

TEST(TlsConnection, ServerOfAnotherCaIsRefusedByTheDialler) {
  CertDir d, other;
  ASSERT_TRUE(d.ok() && other.ok());
  Loop loop;
  TlsContext::Options so = NodeOptions(other);
  so.client_certs = TlsContext::ClientCerts::kNone;
  EchoServer server(loop, TlsContext::Create(so).value());
  auto client_tls = TlsContext::Create(NodeOptions(d)).value();
  ClientEnd client;
  client.Open(loop, server.listener->port(), client_tls);
  ASSERT_TRUE(RunUntil(loop, [&] { return client.closed; }));
  EXPECT_TRUE(client.failed);
  EXPECT_FALSE(client.connected);
  EXPECT_NE(client.error.find("certificate verification failed"), std::string::npos) << client.error;
  EXPECT_EQ(client_tls->stats().handshake_failures, 1u);
}

TEST(TlsConnection, PlainTcpAndGarbageAreRefusedAndTheListenerStays) {
  CertDir d;
  ASSERT_TRUE(d.ok());
  Loop loop;
  auto server_tls = TlsContext::Create(NodeOptions(d)).value();
  EchoServer server(loop, server_tls);
  for (const std::string& junk : {std::string("*1\r\n$4\r\nPING\r\n"), std::string(70000, '\x16'),
                                  std::string("\x16\x03\x01\xff\xff") + std::string(5000, 'A')}) {
    ClientEnd plain;
    plain.Open(loop, server.listener->port(), nullptr);
    plain.conn->Write(junk);
    ASSERT_TRUE(RunUntil(loop, [&] { return plain.closed; }));
    EXPECT_EQ(plain.got.find("PONG"), std::string::npos);
  }
  EXPECT_EQ(server.received, 0u);
  EXPECT_EQ(server_tls->stats().handshake_failures, 3u);
  // ... and a real client still gets through.
  ClientEnd client;
  client.Open(loop, server.listener->port(), TlsContext::Create(NodeOptions(d)).value());
  client.conn->Write("hello");
  ASSERT_TRUE(RunUntil(loop, [&] { return client.got == "hello"; }));
}

TEST(TlsConnection, SilentClientIsClosedAtTheHandshakeDeadline) {
  CertDir d;
  ASSERT_TRUE(d.ok());
  Loop loop;
  TlsContext::Options o = NodeOptions(d);
  o.handshake_timeout_ms = 200;
  auto server_tls = TlsContext::Create(o).value();
  EchoServer server(loop, server_tls);
  ClientEnd silent;
  silent.Open(loop, server.listener->port(), nullptr);
  const int64_t t0 = loop.NowMs();
  ASSERT_TRUE(RunUntil(loop, [&] { return silent.closed; }, 3000));
  EXPECT_GE(loop.NowMs() - t0, 150);
  EXPECT_EQ(server_tls->stats().handshake_failures, 1u);
}

// A client that asks for TLS 1.3 key updates over and over and never reads the server's
// answers: each answer is protocol output the owner never wrote, so it must not pile
// up in the connection's queue without bound.
TEST(TlsConnection, KeyUpdateFloodWithoutReadingIsCutOff) {
  CertDir d;
  ASSERT_TRUE(d.ok());
  Loop loop;
  auto server_tls = TlsContext::Create(NodeOptions(d)).value();
  EchoServer server(loop, server_tls);
  const int port = server.listener->port();
  std::atomic<bool> done{false};
  std::atomic<int> sent{0};
  std::atomic<bool> cut_off{false};  // the server closed the connection under the flood
  std::atomic<bool> go{false};
  std::thread flooder([&] {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_use_certificate_chain_file(ctx, d("client.crt").c_str());
    SSL_CTX_use_PrivateKey_file(ctx, d("client.key").c_str(), SSL_FILETYPE_PEM);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SSL* ssl = nullptr;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) == 1) {
        timeval tv{0, 200000};
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        while (!go && !done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        // Key updates are made into memory and sent a thousand at a time.
        BIO* out = BIO_new(BIO_s_mem());
        SSL_set0_wbio(ssl, out);
        while (sent < 2000000 && !done && !cut_off) {
          for (int k = 0; k < 1000; ++k) {
            SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED);
            SSL_do_handshake(ssl);
          }
          char* p = nullptr;
          long n = BIO_get_mem_data(out, &p);
          while (n > 0) {
            const ssize_t w = ::send(fd, p, static_cast<size_t>(n), MSG_NOSIGNAL);
            if (w < 0 && errno == EAGAIN && !done) continue;
            if (w <= 0) {
              cut_off = !done;
              break;
            }
            p += w;
            n -= w;
          }
          (void)BIO_reset(out);
          sent += 1000;
        }
      }
    }
    SSL_free(ssl);
    ::close(fd);
    SSL_CTX_free(ctx);
  });
  // Without the bound the server queues an answer per request for as long as the
  // flood lasts (1.9 MB after 300,000 requests, growing) and never closes.
  // The kernel's buffers hold the first answers; shrink the server socket's (found by
  // its port in this process's descriptors) so the flood reaches the queue sooner.
  ASSERT_TRUE(RunUntil(loop, [&] { return server_tls->stats().handshakes == 1; }));
  for (int fd = 3; fd < 4096; ++fd) {
    sockaddr_in local{}, remote{};
    socklen_t len = sizeof local, rlen = sizeof remote;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0 && local.sin_family == AF_INET &&
        ntohs(local.sin_port) == port &&
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &rlen) == 0) {
      const int small = 4096;
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    }
  }
  go = true;
  if (!RunUntil(loop, [&] { return server.closed > 0; }, 60000)) done = true;
  flooder.join();  // it stops at its first failed write once the server closed
  std::printf("key updates sent before the server closed: %d\n", sent.load());
  EXPECT_GT(sent.load(), 1000);  // the flood did happen
  EXPECT_TRUE(cut_off.load()) << "the server kept a client that reads nothing of its answers";
  EXPECT_EQ(server_tls->stats().errors, 1u);
}

}  // namespace
}  // namespace itsuka::net
