// TLS as a pure state machine over OpenSSL 3: no sockets and no I/O of its
// own. The caller moves ciphertext between the network and the session
// (feed what it received, send what take() gives), so one implementation
// works with every poller backend and never blocks.
//
// The step protocol: call handshake() / read() / write() / shutdown(); after
// every step, send everything take() returns; then act on the status:
//   done              the step finished (bytes says how much for read/write)
//   want_read         feed more ciphertext from the network, then call again
//   want_write        the session has output to send before it can go on
//   closed            the peer ended the stream with close_notify
//   closed_abruptly   the network stream ended without close_notify
//   error             message says why (e.g. "certificate verify failed: ...")
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sock {
namespace tls {

enum class Status { done, want_read, want_write, closed, closed_abruptly, error };

struct Result {
  Status status = Status::done;
  size_t bytes = 0;     // read() and write(): how many plaintext bytes moved
  std::string message;  // error: OpenSSL's reason, with the verify result
};

struct ContextOptions {
  bool server = false;
  // Clients: check the server's certificate and name (default). Servers:
  // ask for a client certificate and require it to verify (mutual TLS).
  bool verify = true;
  // Trust anchors. None given: the system's store (clients only).
  std::string ca_file, ca_dir, ca_pem;
  // Own certificate (chain) and private key, as a file or PEM text.
  std::string cert_file, cert_pem, key_file, key_pem;
  std::vector<std::string> alpn;     // protocols, most preferred first
  std::string min_version, max_version;  // "tls1", "tls1.1", "tls1.2", "tls1.3"
  std::string ciphers;        // TLS 1.2 and below (OpenSSL cipher list)
  std::string ciphersuites;   // TLS 1.3
  // Clients: keep the last session per server name and offer it on the next
  // connection to that name (a shorter handshake when the server agrees).
  bool session_reuse = true;
};

// Shared configuration (an SSL_CTX): certificates, trust, protocols.
class Context {
 public:
  // nullptr and *error set when an option is invalid or a file unreadable.
  static std::shared_ptr<Context> create(const ContextOptions& options, std::string* error);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  bool is_server() const { return server_; }
  void* native() const { return ctx_; }  // SSL_CTX*

 private:
  Context() = default;
  void* ctx_ = nullptr;
  bool server_ = false;
  bool verify_ = true;
  std::vector<unsigned char> alpn_wire_;  // server: what it may choose from
  // Client sessions to resume, by server name (SSL_SESSION*, one reference
  // each); a context may serve connections on several threads.
  std::mutex sessions_mutex_;
  std::map<std::string, void*> sessions_;
  friend struct ContextAccess;
  friend class Session;
};

struct PeerCertificate {
  bool present = false;
  std::string subject, issuer;     // RFC 2253 form: "CN=localhost,O=..."
  std::vector<std::string> names;  // subjectAltName DNS names and IP addresses
  long long not_after = 0;         // Unix time
};

// One connection's TLS state.
class Session {
 public:
  // servername (clients): sent as SNI (unless it is an IP address) and, when
  // the context verifies, checked against the certificate.
  static std::unique_ptr<Session> create(std::shared_ptr<Context> context, const std::string& servername,
                                         std::string* error);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Ciphertext from the network. Always takes all of it (memory BIO).
  void feed(const char* data, size_t len);
  // The network stream ended: later steps that need input report
  // closed_abruptly (or closed, if close_notify had come).
  void feed_eof();
  // Ciphertext to send, up to cap bytes; pending_output() says how much waits.
  size_t take(char* out, size_t cap);
  size_t pending_output() const;
  // Input in hand that a read() may get plaintext from without more
  // network I/O: ciphertext fed and not yet processed, or plaintext of a
  // record that an earlier read() did not take all of.
  bool has_pending_input() const;
  // Whether read() now could only say want_read, which is cheaper to tell
  // than to try: the handshake is done, no ciphertext is waiting or half
  // processed, no plaintext is in hand, and neither the end of the stream,
  // nor close_notify, nor a failure has come.
  bool read_would_block() const;

  Result handshake();
  Result read(char* out, size_t cap);
  Result write(const char* data, size_t len);
  // Sends close_notify (done once it is queued; does not wait for the peer's).
  Result shutdown();

  bool handshake_done() const;
  bool session_reused() const;  // the handshake resumed an earlier session
  PeerCertificate peer_certificate() const;
  std::string alpn() const;     // "" when none was negotiated
  std::string version() const;  // "TLSv1.3", ...

 private:
  Session() = default;
  Result result_of(int ret, size_t bytes);
  std::shared_ptr<Context> context_;
  void* ssl_ = nullptr;   // SSL*
  void* rbio_ = nullptr;  // BIO* the network's ciphertext goes into
  void* wbio_ = nullptr;  // BIO* the session's ciphertext comes out of
  bool eof_ = false;
  bool failed_ = false;  // a step said error: the next may say it again without input
  std::string session_key_;  // clients: where the context keeps this server's session
  friend struct ContextAccess;
};

}  // namespace tls
}  // namespace sock
