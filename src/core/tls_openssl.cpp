// The TLS engine (sock/tls.hpp) over OpenSSL 3, through memory BIOs: the
// SSL object reads the ciphertext the caller fed and writes into a buffer
// the caller drains, so no OpenSSL call ever touches a socket or blocks.
#include "sock/tls.hpp"

#include "sock/address.hpp"  // inet_pton, inet_ntop: the core's own, the same on every platform
#include "sock/process.hpp"  // keep_module_loaded
#include "tls_system_ca.hpp"    // load_system_ca: the system's store, per OS

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <climits>
#include <cstring>

namespace sock {
namespace tls {

namespace {

// The first queued OpenSSL error as text ("certificate verify failed"), and
// the queue emptied so that it does not leak into the next step's verdict.
std::string take_openssl_error(const char* fallback) {
  unsigned long first = ERR_get_error();
  ERR_clear_error();
  if (first == 0) return fallback;
  const char* reason = ERR_reason_error_string(first);
  if (reason) return reason;
  char buf[256];
  ERR_error_string_n(first, buf, sizeof buf);
  return buf;
}

bool parse_version(const std::string& name, int* out) {
  static const struct { const char* name; int version; } versions[] = {
      {"tls1", TLS1_VERSION},     {"tls1.0", TLS1_VERSION}, {"tls1.1", TLS1_1_VERSION},
      {"tls1.2", TLS1_2_VERSION}, {"tls1.3", TLS1_3_VERSION}};
  for (const auto& v : versions)
    if (name == v.name) {
      *out = v.version;
      return true;
    }
  return false;
}

// Every certificate in PEM text, into the context's trust store.
bool add_ca_pem(SSL_CTX* ctx, const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), (int)pem.size());
  if (!bio) return false;
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store, cert) == 1) added++;
    X509_free(cert);
  }
  BIO_free(bio);
  ERR_clear_error();  // the loop ends on a "no start line" error
  return added > 0;
}

// A certificate and the chain after it, from PEM text.
bool use_cert_pem(SSL_CTX* ctx, const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), (int)pem.size());
  if (!bio) return false;
  X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  bool ok = leaf && SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  while (ok) {
    X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (!extra) break;
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {  // takes ownership on success
      X509_free(extra);
      ok = false;
    }
  }
  BIO_free(bio);
  if (ok) ERR_clear_error();
  return ok;
}

bool use_key_pem(SSL_CTX* ctx, const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), (int)pem.size());
  if (!bio) return false;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  bool ok = key && SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  return ok;
}

// ALPN's wire form: each name prefixed with its length.
bool alpn_wire(const std::vector<std::string>& names, std::vector<unsigned char>* out) {
  for (const std::string& n : names) {
    if (n.empty() || n.size() > 255) return false;
    out->push_back((unsigned char)n.size());
    out->insert(out->end(), n.begin(), n.end());
  }
  return true;
}

std::string name_text(X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return "";
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string s(data ? data : "", len > 0 ? (size_t)len : 0);
  BIO_free(bio);
  return s;
}

// Before a step: an empty error queue, so that SSL_get_error judges the
// step by its own errors only. ERR_clear_error wipes all of the queue's
// slots, a cost on every record; peeking first makes the usual case (the
// queue already empty: every path here leaves it so) cheap.
inline void clear_stale_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

// Context's private fields, for the callbacks that get only the SSL_CTX.
struct ContextAccess {
  static int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                         unsigned int inlen, void* arg) {
    Context* c = static_cast<Context*>(arg);
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, outlen, c->alpn_wire_.data(), (unsigned)c->alpn_wire_.size(), in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
      return SSL_TLSEXT_ERR_NOACK;  // no protocol in common: go on without ALPN
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
  }
  // A client session the server lets us resume (TLS 1.3: it comes after the
  // handshake, in a ticket): kept as the one to offer to this server next.
  static int keep_session(SSL* ssl, SSL_SESSION* session) {
    Session* s = static_cast<Session*>(SSL_get_app_data(ssl));
    Context* c = static_cast<Context*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    if (!s || !c || !SSL_SESSION_is_resumable(session)) return 0;
    // A copy: the connection's own session is marked not resumable when
    // the connection ends without close_notify (SSL_free removes it).
    SSL_SESSION* copy = SSL_SESSION_dup(session);
    if (!copy) return 0;
    std::lock_guard<std::mutex> lock(c->sessions_mutex_);
    void*& slot = c->sessions_[s->session_key_];
    SSL_SESSION_free(static_cast<SSL_SESSION*>(slot));
    slot = copy;
    return 0;  // (the connection keeps its reference)
  }
  static std::shared_ptr<Context> create(const ContextOptions& o, std::string* error);
};

std::shared_ptr<Context> ContextAccess::create(const ContextOptions& o, std::string* error) {
  keep_module_loaded();  // OpenSSL's exit handler may live in this module (process.hpp)
  ERR_clear_error();
  std::shared_ptr<Context> c(new Context());
  c->server_ = o.server;
  c->verify_ = o.verify;
  SSL_CTX* ctx = SSL_CTX_new(o.server ? TLS_server_method() : TLS_client_method());
  if (!ctx) {
    *error = take_openssl_error("cannot create a TLS context");
    return nullptr;
  }
  c->ctx_ = ctx;
  auto fail = [&](const std::string& what) -> std::shared_ptr<Context> {
    *error = what + ": " + take_openssl_error("failed");
    return nullptr;
  };

  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  int v;
  if (!o.min_version.empty()) {
    if (!parse_version(o.min_version, &v)) return (*error = "unknown protocol version '" + o.min_version + "'", nullptr);
    if (SSL_CTX_set_min_proto_version(ctx, v) != 1) return fail("min_version");
  } else {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);  // older ones are broken
  }
  if (!o.max_version.empty()) {
    if (!parse_version(o.max_version, &v)) return (*error = "unknown protocol version '" + o.max_version + "'", nullptr);
    if (SSL_CTX_set_max_proto_version(ctx, v) != 1) return fail("max_version");
  }
  if (!o.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, o.ciphers.c_str()) != 1) return fail("ciphers");
  if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, o.ciphersuites.c_str()) != 1)
    return fail("ciphersuites");

  bool own_ca = !o.ca_file.empty() || !o.ca_dir.empty() || !o.ca_pem.empty();
  if (!o.ca_file.empty() || !o.ca_dir.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, o.ca_file.empty() ? nullptr : o.ca_file.c_str(),
                                      o.ca_dir.empty() ? nullptr : o.ca_dir.c_str()) != 1)
      return fail(!o.ca_file.empty() ? "ca_file '" + o.ca_file + "'" : "ca_dir '" + o.ca_dir + "'");
  }
  if (!o.ca_pem.empty() && !add_ca_pem(ctx, o.ca_pem)) return fail("ca: no certificate in the PEM text");
  if (!own_ca && !o.server && o.verify && !load_system_ca(ctx))
    return fail("the system's CA store");

  if (!o.cert_file.empty() && SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1)
    return fail("cert_file '" + o.cert_file + "'");
  if (!o.cert_pem.empty() && !use_cert_pem(ctx, o.cert_pem)) return fail("cert: PEM text");
  if (!o.key_file.empty() && SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail("key_file '" + o.key_file + "'");
  if (!o.key_pem.empty() && !use_key_pem(ctx, o.key_pem)) return fail("key: PEM text");
  bool has_cert = !o.cert_file.empty() || !o.cert_pem.empty();
  bool has_key = !o.key_file.empty() || !o.key_pem.empty();
  if (has_cert != has_key) return (*error = "a certificate needs its key and a key its certificate", nullptr);
  if (has_cert && SSL_CTX_check_private_key(ctx) != 1) return fail("the key does not match the certificate");
  if (o.server && !has_cert) return (*error = "a TLS server needs a certificate and its key", nullptr);

  if (o.server) {
    // Servers verify only when asked (mutual TLS), and then require a certificate.
    SSL_CTX_set_verify(ctx, o.verify ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_NONE,
                       nullptr);
    if (o.verify && !own_ca) return (*error = "verifying clients needs a CA (ca, ca_file or ca_dir)", nullptr);
  } else {
    SSL_CTX_set_verify(ctx, o.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  }

  if (!o.server && o.session_reuse) {
    SSL_CTX_set_app_data(ctx, c.get());
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, keep_session);
  }

  if (!o.alpn.empty()) {
    if (!alpn_wire(o.alpn, &c->alpn_wire_)) return (*error = "alpn: names must be 1 to 255 bytes", nullptr);
    if (o.server) {
      SSL_CTX_set_alpn_select_cb(ctx, select_alpn, c.get());
    } else if (SSL_CTX_set_alpn_protos(ctx, c->alpn_wire_.data(), (unsigned)c->alpn_wire_.size()) != 0) {
      return fail("alpn");
    }
  }
  return c;
}

std::shared_ptr<Context> Context::create(const ContextOptions& options, std::string* error) {
  return ContextAccess::create(options, error);
}

Context::~Context() {
  for (auto& kv : sessions_) SSL_SESSION_free(static_cast<SSL_SESSION*>(kv.second));
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

// --- Session -----------------------------------------------------------------

#define SSL_OF(s) static_cast<SSL*>((s)->ssl_)
#define BIO_OF(b) static_cast<BIO*>(b)

std::unique_ptr<Session> Session::create(std::shared_ptr<Context> context, const std::string& servername,
                                         std::string* error) {
  ERR_clear_error();
  std::unique_ptr<Session> s(new Session());
  s->context_ = context;
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(context->native()));
  if (!ssl) {
    *error = take_openssl_error("cannot create a TLS session");
    return nullptr;
  }
  s->ssl_ = ssl;
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (!rbio || !wbio) {
    BIO_free(rbio);
    BIO_free(wbio);
    *error = "out of memory";
    return nullptr;
  }
  // Empty input means "wait for more", not end of stream, until feed_eof().
  BIO_set_mem_eof_return(rbio, -1);
  SSL_set_bio(ssl, rbio, wbio);  // the SSL owns both now
  s->rbio_ = rbio;
  s->wbio_ = wbio;

  if (context->is_server()) {
    SSL_set_accept_state(ssl);
  } else {
    SSL_set_connect_state(ssl);
    SSL_set_app_data(ssl, s.get());
    s->session_key_ = servername;
    {
      Context& c = *context;
      std::lock_guard<std::mutex> lock(c.sessions_mutex_);
      auto it = c.sessions_.find(servername);
      if (it != c.sessions_.end()) SSL_set_session(ssl, static_cast<SSL_SESSION*>(it->second));  // (it takes a reference)
    }
    if (!servername.empty()) {
      unsigned char addr[16];
      size_t addrlen;
      bool is_ip = sock::inet_pton(AF_INET, servername, addr, &addrlen) ||
                   sock::inet_pton(AF_INET6, servername, addr, &addrlen);
      if (!is_ip && SSL_set_tlsext_host_name(ssl, servername.c_str()) != 1) {
        *error = "servername: " + take_openssl_error("invalid");
        return nullptr;
      }
      if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) {
        // The certificate must name this host (or carry this IP address).
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), servername.c_str())
                       : SSL_set1_host(ssl, servername.c_str());
        if (ok != 1) {
          *error = "servername: " + take_openssl_error("invalid");
          return nullptr;
        }
      }
    }
  }
  return s;
}

Session::~Session() { SSL_free(SSL_OF(this)); }  // frees the BIOs too

void Session::feed(const char* data, size_t len) {
  while (len > 0) {
    int chunk = len > (size_t)INT_MAX ? INT_MAX : (int)len;
    int n = BIO_write(BIO_OF(rbio_), data, chunk);  // a memory BIO grows: only OOM fails
    if (n <= 0) return;
    data += n;
    len -= (size_t)n;
  }
}

void Session::feed_eof() {
  eof_ = true;
  BIO_set_mem_eof_return(BIO_OF(rbio_), 0);
}

size_t Session::pending_output() const { return BIO_ctrl_pending(BIO_OF(wbio_)); }

bool Session::has_pending_input() const {
  return BIO_ctrl_pending(BIO_OF(rbio_)) > 0 || SSL_pending(SSL_OF(this)) > 0;
}

bool Session::read_would_block() const {
  SSL* ssl = SSL_OF(this);
  return !eof_ && !failed_ && BIO_ctrl_pending(BIO_OF(rbio_)) == 0 && SSL_has_pending(ssl) == 0 &&
         SSL_is_init_finished(ssl) && (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) == 0;
}

size_t Session::take(char* out, size_t cap) {
  if (cap > (size_t)INT_MAX) cap = INT_MAX;
  int n = BIO_read(BIO_OF(wbio_), out, (int)cap);
  return n > 0 ? (size_t)n : 0;
}

Result Session::result_of(int ret, size_t bytes) {
  Result r;
  if (ret > 0) {
    r.bytes = bytes;
    return r;
  }
  SSL* ssl = SSL_OF(this);
  int err = SSL_get_error(ssl, ret);
  // (SSL_get_error says SSL_ERROR_SSL or _SYSCALL whenever the error queue
  // holds something, so after WANT_READ, WANT_WRITE and ZERO_RETURN it is
  // empty: nothing to clear on these paths, which are taken on every record.)
  switch (err) {
    case SSL_ERROR_WANT_READ:
      // Input ran dry; with the network at its end that is a truncation.
      r.status = eof_ ? Status::closed_abruptly : Status::want_read;
      return r;
    case SSL_ERROR_WANT_WRITE:
      r.status = Status::want_write;
      return r;
    case SSL_ERROR_ZERO_RETURN:
      r.status = Status::closed;
      return r;
    case SSL_ERROR_SYSCALL:  // with memory BIOs: the input ended
      r.status = Status::closed_abruptly;
      ERR_clear_error();
      return r;
    default: {
      unsigned long e = ERR_peek_error();
      if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        r.status = Status::closed_abruptly;
        ERR_clear_error();
        return r;
      }
      r.status = Status::error;
      failed_ = true;
      bool verify_failed = ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED;
      r.message = take_openssl_error("TLS error");
      // Why the certificate was refused (the verify result is kept from
      // the handshake on, so it is added only to the error it explains).
      long verify = SSL_get_verify_result(ssl);
      if (verify_failed && verify != X509_V_OK) r.message += std::string(": ") + X509_verify_cert_error_string(verify);
      return r;
    }
  }
}

Result Session::handshake() {
  clear_stale_errors();
  return result_of(SSL_do_handshake(SSL_OF(this)), 0);
}

Result Session::read(char* out, size_t cap) {
  clear_stale_errors();
  size_t n = 0;
  int ret = SSL_read_ex(SSL_OF(this), out, cap, &n);
  return result_of(ret, n);
}

Result Session::write(const char* data, size_t len) {
  clear_stale_errors();
  size_t n = 0;
  int ret = SSL_write_ex(SSL_OF(this), data, len, &n);
  return result_of(ret, n);
}

Result Session::shutdown() {
  clear_stale_errors();
  SSL* ssl = SSL_OF(this);
  if (!SSL_is_init_finished(ssl)) return Result{};  // nothing to close yet
  int ret = SSL_shutdown(ssl);
  if (ret >= 0) return Result{};  // close_notify is queued (0: the peer's has not come; we do not wait)
  return result_of(ret, 0);
}

bool Session::session_reused() const { return SSL_session_reused(SSL_OF(this)) == 1; }

bool Session::handshake_done() const { return SSL_is_init_finished(SSL_OF(this)) == 1; }

PeerCertificate Session::peer_certificate() const {
  PeerCertificate pc;
  X509* cert = SSL_get1_peer_certificate(SSL_OF(this));
  if (!cert) return pc;
  pc.present = true;
  pc.subject = name_text(X509_get_subject_name(cert));
  pc.issuer = name_text(X509_get_issuer_name(cert));
  GENERAL_NAMES* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      pc.names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)), ASN1_STRING_length(dns));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = "";
      int len = ASN1_STRING_length(ip);
      if (len == 4 || len == 16)
        sock::inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), text, sizeof text);
      if (text[0]) pc.names.emplace_back(text);
    }
  }
  GENERAL_NAMES_free(names);
  // Seconds since 1970 as OpenSSL counts them (timegm is not everywhere: no
  // Windows C runtime has it).
  if (ASN1_TIME* epoch = ASN1_TIME_set(nullptr, 0)) {
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, epoch, X509_get0_notAfter(cert)) == 1)
      pc.not_after = (long long)days * 86400 + secs;
    ASN1_TIME_free(epoch);
  }
  X509_free(cert);
  ERR_clear_error();
  return pc;
}

std::string Session::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(SSL_OF(this), &data, &len);
  return data ? std::string(reinterpret_cast<const char*>(data), len) : std::string();
}

std::string Session::version() const { return SSL_get_version(SSL_OF(this)); }

}  // namespace tls
}  // namespace sock
