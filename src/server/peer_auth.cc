#include "server/peer_auth.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/lines.h"

namespace itsuka::server {

bool RandomBytes(size_t n, std::string* out) {
  out->assign(n, '\0');
  return RAND_bytes(reinterpret_cast<unsigned char*>(out->data()), static_cast<int>(n)) == 1;
}

std::string ToHex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

namespace {
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool FromHex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexDigit(hex[i]), lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

Result<ClusterSecret> ParseSecretText(std::string_view text, const std::string& origin) {
  ClusterSecret s;
  bool have_id = false;
  LineReader lines(text);
  std::string_view line;
  while (lines.Next(&line)) {
    const int line_no = lines.number();
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    const size_t sp = line.find_first_of(" \t");
    const std::string_view key = line.substr(0, sp);
    std::string_view value = sp == std::string_view::npos ? "" : line.substr(sp + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    const std::string where = origin + ":" + std::to_string(line_no) + ": ";
    std::string bytes;
    if (key == "cluster-id") {
      if (have_id) return Status::InvalidArgument(where + "a second cluster-id line");
      if (!FromHex(value, &bytes) || bytes.size() != kClusterIdBytes) {
        return Status::InvalidArgument(where + "cluster-id must be " +
                                       std::to_string(kClusterIdBytes * 2) + " hex digits");
      }
      s.cluster_id = bytes;
      have_id = true;
    } else if (key == "secret") {
      if (!FromHex(value, &bytes)) {
        return Status::InvalidArgument(where + "the secret is not hex digits");
      }
      if (bytes.size() < kMinSecretBytes) {
        return Status::InvalidArgument(where + "the secret is too short (" +
                                       std::to_string(bytes.size()) + " bytes; at least " +
                                       std::to_string(kMinSecretBytes) + " needed)");
      }
      if (bytes.size() > kMaxSecretBytes) {
        return Status::InvalidArgument(where + "the secret is longer than " +
                                       std::to_string(kMaxSecretBytes) + " bytes");
      }
      if (s.secrets.size() == kMaxSecrets) {
        return Status::InvalidArgument(where + "more than " + std::to_string(kMaxSecrets) +
                                       " secret lines");
      }
      s.secrets.push_back(std::move(bytes));
    } else {
      return Status::InvalidArgument(where + "unknown line (expected 'cluster-id HEX' or 'secret HEX')");
    }
  }
  if (!have_id) return Status::InvalidArgument(origin + ": no cluster-id line");
  if (s.secrets.empty()) return Status::InvalidArgument(origin + ": no secret line");
  return s;
}

Result<ClusterSecret> LoadSecretFile(const std::string& path) {
  const std::string origin = "cluster.secret_file '" + path + "'";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::InvalidArgument(origin + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(origin + ": not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::InvalidArgument(origin + ": mode " + mode +
                                   " lets group or others access it; chmod 600 it");
  }
  if (st.st_size > 64 * 1024) return Status::InvalidArgument(origin + ": larger than 64 KiB");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument(origin + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseSecretText(ss.str(), origin);
}

std::string FormatSecretFile(const ClusterSecret& s) {
  std::string out =
      "# itsuka cluster secret: keep private (mode 0600). The cluster id never changes;\n"
      "# to rotate, add a new 'secret' line on every node, restart them one by one, then\n"
      "# remove the old line and restart them again.\n";
  out += "cluster-id " + ToHex(s.cluster_id) + "\n";
  for (const std::string& secret : s.secrets) out += "secret " + ToHex(secret) + "\n";
  return out;
}

Result<ClusterSecret> GenerateSecret(const std::string& cluster_id) {
  ClusterSecret s;
  if (!cluster_id.empty()) {
    if (cluster_id.size() != kClusterIdBytes) return Status::InvalidArgument("bad cluster id");
    s.cluster_id = cluster_id;
  } else if (!RandomBytes(kClusterIdBytes, &s.cluster_id)) {
    return Status::IOError("the random number generator failed");
  }
  std::string secret;
  if (!RandomBytes(kMinSecretBytes, &secret)) return Status::IOError("the random number generator failed");
  s.secrets.push_back(std::move(secret));
  return s;
}

Status WriteSecretFile(const std::string& path, const ClusterSecret& s) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot create '" + path + "': " + std::strerror(errno));
  const std::string text = FormatSecretFile(s);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(path.c_str());
      return Status::IOError("cannot write '" + path + "': " + err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return Status::IOError("cannot write '" + path + "': " + std::strerror(errno));
  }
  return Status::Ok();
}

namespace {
void AppendField(std::string* out, std::string_view field) {
  const auto n = static_cast<uint32_t>(field.size());
  const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  out->append(len, 4);
  out->append(field);
}
}  // namespace

std::string ComputeProof(std::string_view secret, ProofRole role, const ProofInput& in) {
  std::string msg;
  AppendField(&msg, "itsuka-peer-auth-v2");
  AppendField(&msg, role == ProofRole::kInitiator ? "initiator" : "acceptor");
  AppendField(&msg, in.cluster_id);
  AppendField(&msg, in.initiator_id);
  AppendField(&msg, in.acceptor_id);
  AppendField(&msg, in.initiator_nonce);
  AppendField(&msg, in.acceptor_nonce);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &mac_len) == nullptr) {
    return std::string();  // never verifies: VerifyProof rejects empty macs
  }
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

std::vector<std::string> ComputeProofs(const std::vector<std::string>& secrets, ProofRole role,
                                       const ProofInput& in) {
  std::vector<std::string> out;
  for (const std::string& s : secrets) out.push_back(ComputeProof(s, role, in));
  return out;
}

bool VerifyProof(const std::vector<std::string>& secrets, const std::vector<std::string>& macs,
                 ProofRole role, const ProofInput& in) {
  bool ok = false;
  for (const std::string& secret : secrets) {
    const std::string want = ComputeProof(secret, role, in);
    if (want.empty()) continue;
    for (const std::string& mac : macs) {
      if (mac.size() == want.size() && CRYPTO_memcmp(mac.data(), want.data(), want.size()) == 0) {
        ok = true;
      }
    }
  }
  return ok;
}

}  // namespace itsuka::server
