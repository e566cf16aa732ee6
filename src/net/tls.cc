#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdio>
#include <fstream>

#include "net/tls_impl.h"

namespace itsuka::net {

std::string TlsErrorText(const char* fallback) {
  std::string text;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? std::string(fallback) : text;
}

namespace {

Status Readable(const char* setting, const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("setting '" + std::string(setting) + "' is empty");
  std::ifstream in(path);
  if (!in) {
    return Status::InvalidArgument("setting '" + std::string(setting) + "': cannot read '" + path + "'");
  }
  return Status::Ok();
}

std::string Describe(SSL_CTX* ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return "";
  std::string out;
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  BIO_puts(bio, ", expires ");
  ASN1_TIME_print(bio, X509_get0_notAfter(cert));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  if (n > 0) out.assign(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

}  // namespace

TlsContext::TlsContext() : impl_(std::make_unique<Impl>()) {}
TlsContext::~TlsContext() = default;

Result<std::shared_ptr<TlsContext>> TlsContext::Create(const Options& options) {
  Status st = Readable("tls.cert_file", options.cert_file);
  if (st.ok()) st = Readable("tls.key_file", options.key_file);
  if (st.ok() && (options.client_certs != ClientCerts::kNone || !options.ca_cert_file.empty())) {
    st = Readable("tls.ca_cert_file", options.ca_cert_file);
  }
  if (!st.ok()) return st;
  std::shared_ptr<TlsContext> tls(new TlsContext);
  tls->options_ = options;
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (ctx == nullptr) return Status::IOError("tls: " + TlsErrorText("cannot create an SSL_CTX"));
  tls->impl_->ctx = ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // Writes of any size go through memory BIOs, which never refuse; partial writes
  // and moving buffers are allowed so a retry never has to present the same pointer.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // A certificate chain a client may send is bounded (OpenSSL's default is 100 KiB).
  SSL_CTX_set_max_cert_list(ctx, 64 << 10);

  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1) {
    return Status::InvalidArgument("setting 'tls.cert_file': '" + options.cert_file +
                                   "' is not a PEM certificate: " + TlsErrorText("unreadable"));
  }
  EVP_PKEY* key = nullptr;
  if (BIO* in = BIO_new_file(options.key_file.c_str(), "r")) {
    // No passphrase callback input: an encrypted key fails here rather than prompting.
    key = PEM_read_bio_PrivateKey(in, nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
    BIO_free(in);
  }
  if (key == nullptr) {
    return Status::InvalidArgument("setting 'tls.key_file': '" + options.key_file +
                                   "' is not a PEM private key (or is encrypted): " +
                                   TlsErrorText("unreadable"));
  }
  const int used = SSL_CTX_use_PrivateKey(ctx, key);
  EVP_PKEY_free(key);
  if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return Status::InvalidArgument("setting 'tls.key_file': '" + options.key_file +
                                   "' does not match the certificate in '" + options.cert_file +
                                   "': " + TlsErrorText("mismatch"));
  }
  if (!options.ca_cert_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.ca_cert_file.c_str(), nullptr) != 1) {
      return Status::InvalidArgument("setting 'tls.ca_cert_file': '" + options.ca_cert_file +
                                     "' holds no PEM CA certificate: " + TlsErrorText("unreadable"));
    }
    // Tell clients which CA is wanted (redis-cli and libraries pick a certificate by it).
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.ca_cert_file.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
  }
  int mode = SSL_VERIFY_NONE;
  if (options.client_certs == ClientCerts::kOptional) mode = SSL_VERIFY_PEER;
  if (options.client_certs == ClientCerts::kRequire) {
    mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_CTX_set_verify(ctx, mode, nullptr);
  SSL_CTX_set_verify_depth(ctx, 8);
  ERR_clear_error();
  tls->description_ = Describe(ctx);
  return tls;
}

}  // namespace itsuka::net
