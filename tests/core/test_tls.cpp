// The TLS engine without any network: a client and a server session pass
// ciphertext to each other in memory. Certificates are made here with
// OpenSSL's API, valid from now, so nothing that expires is committed.
#ifdef SOCK_HAVE_TLS
#include <catch2/catch.hpp>

#include "sock/tls.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <string>

using namespace sock::tls;

namespace {

struct Pem {
  std::string cert, key;
};

std::string pem_of_key(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data;
  long len = BIO_get_mem_data(bio, &data);
  std::string s(data, len);
  BIO_free(bio);
  return s;
}

std::string pem_of_cert(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data;
  long len = BIO_get_mem_data(bio, &data);
  std::string s(data, len);
  BIO_free(bio);
  return s;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  REQUIRE(ext);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `cn` (with subjectAltName `san` unless empty), signed by
// the issuer (or by itself when issuer is null).
Pem make_cert(const char* cn, const char* san, const Pem* issuer, bool ca) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char*)cn, -1, -1, 0);

  X509* issuer_cert = cert;
  EVP_PKEY* issuer_key = key;
  if (issuer) {
    BIO* b = BIO_new_mem_buf(issuer->cert.data(), (int)issuer->cert.size());
    issuer_cert = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    b = BIO_new_mem_buf(issuer->key.data(), (int)issuer->key.size());
    issuer_key = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
    BIO_free(b);
  }
  X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert));
  add_ext(cert, issuer_cert, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  if (san[0]) add_ext(cert, issuer_cert, NID_subject_alt_name, san);
  REQUIRE(X509_sign(cert, issuer_key, EVP_sha256()) > 0);
  Pem pem{pem_of_cert(cert), pem_of_key(key)};
  if (issuer) {
    X509_free(issuer_cert);
    EVP_PKEY_free(issuer_key);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  return pem;
}

struct Certs {
  Pem ca = make_cert("Test CA", "", nullptr, true);
  Pem server = make_cert("localhost", "DNS:localhost,IP:127.0.0.1", &ca, false);
  Pem client = make_cert("a client", "DNS:client.test", &ca, false);
};

const Certs& certs() {
  static Certs c;
  return c;
}

std::shared_ptr<Context> context(ContextOptions o) {
  std::string err;
  auto c = Context::create(o, &err);
  INFO(err);
  REQUIRE(c);
  return c;
}

ContextOptions server_options() {
  ContextOptions o;
  o.server = true;
  o.verify = false;
  o.cert_pem = certs().server.cert;
  o.key_pem = certs().server.key;
  return o;
}

ContextOptions client_options() {
  ContextOptions o;
  o.ca_pem = certs().ca.cert;
  return o;
}

// Move what `from` has to send into `to`; how many bytes moved.
size_t pump(Session& from, Session& to) {
  char buf[4096];
  size_t total = 0;
  while (size_t n = from.take(buf, sizeof buf)) {
    to.feed(buf, n);
    total += n;
  }
  return total;
}

// Step both handshakes until both are done or one fails; the failing
// side's result (or done).
Result handshake(Session& client, Session& server) {
  for (int round = 0; round < 20; round++) {
    Result c = client.handshake();
    pump(client, server);
    if (c.status == Status::error) return c;
    Result s = server.handshake();
    pump(server, client);
    if (s.status == Status::error) return s;
    if (c.status == Status::done && s.status == Status::done) return c;
  }
  FAIL("the handshake does not end");
  return Result{};
}

std::unique_ptr<Session> session(std::shared_ptr<Context> ctx, const std::string& name = "") {
  std::string err;
  auto s = Session::create(ctx, name, &err);
  INFO(err);
  REQUIRE(s);
  return s;
}

}  // namespace

TEST_CASE("tls: handshake, data both ways, close_notify", "[tls]") {
  auto server_ctx = context(server_options());
  ContextOptions co = client_options();
  co.alpn = {"h2", "http/1.1"};
  ContextOptions so = server_options();
  so.alpn = {"http/1.1"};
  server_ctx = context(so);
  auto client = session(context(co), "localhost");
  auto server = session(server_ctx);

  // The client speaks first; the server has nothing to read yet.
  Result c = client->handshake();
  CHECK(c.status == Status::want_read);
  CHECK(client->pending_output() > 0);
  CHECK(server->handshake().status == Status::want_read);

  REQUIRE(handshake(*client, *server).status == Status::done);
  CHECK(client->handshake_done());
  CHECK(client->version() == "TLSv1.3");
  CHECK(client->alpn() == "http/1.1");
  CHECK(server->alpn() == "http/1.1");

  PeerCertificate pc = client->peer_certificate();
  CHECK(pc.present);
  CHECK(pc.subject == "CN=localhost");
  CHECK(pc.issuer == "CN=Test CA");
  REQUIRE(pc.names.size() == 2);
  CHECK(pc.names[0] == "localhost");
  CHECK(pc.names[1] == "127.0.0.1");
  CHECK(pc.not_after > (long long)time(nullptr));
  CHECK_FALSE(server->peer_certificate().present);

  // A large message, in pieces that do not match the records.
  std::string big(300000, 'x');
  for (size_t i = 0; i < big.size(); i++) big[i] = (char)('a' + i % 26);
  size_t written = 0;
  std::string got;
  char buf[7000];
  while (got.size() < big.size()) {
    if (written < big.size()) {
      Result w = client->write(big.data() + written, big.size() - written);
      REQUIRE(w.status == Status::done);
      written += w.bytes;
    }
    pump(*client, *server);
    for (;;) {
      Result r = server->read(buf, sizeof buf);
      if (r.status == Status::want_read) break;
      REQUIRE(r.status == Status::done);
      got.append(buf, r.bytes);
    }
  }
  CHECK(got == big);

  Result w = server->write("pong", 4);
  REQUIRE(w.status == Status::done);
  pump(*server, *client);
  Result r = client->read(buf, sizeof buf);
  REQUIRE(r.status == Status::done);
  CHECK(std::string(buf, r.bytes) == "pong");

  // close_notify: the peer reads a clean end.
  CHECK(client->shutdown().status == Status::done);
  pump(*client, *server);
  CHECK(server->read(buf, sizeof buf).status == Status::closed);
}

TEST_CASE("tls: the stream ending without close_notify is told apart", "[tls]") {
  auto client = session(context(client_options()), "localhost");
  auto server = session(context(server_options()));
  REQUIRE(handshake(*client, *server).status == Status::done);
  char buf[100];
  CHECK(client->read(buf, sizeof buf).status == Status::want_read);
  client->feed_eof();
  CHECK(client->read(buf, sizeof buf).status == Status::closed_abruptly);
}

TEST_CASE("tls: read_would_block says what a read would say, and only then", "[tls]") {
  auto client = session(context(client_options()), "localhost");
  auto server = session(context(server_options()));
  CHECK_FALSE(server->read_would_block());  // the handshake is not done
  REQUIRE(handshake(*client, *server).status == Status::done);
  char buf[100];
  // The server's session tickets wait in the client's input: not yet.
  if (!client->read_would_block()) CHECK(client->read(buf, sizeof buf).status == Status::want_read);
  CHECK(client->read_would_block());
  CHECK(server->read_would_block());

  // A record in two parts: neither part alone lets it say so.
  REQUIRE(server->write("hello", 5).status == Status::done);
  char rec[200];
  size_t n = server->take(rec, sizeof rec);
  REQUIRE(n > 10);
  client->feed(rec, 3);
  CHECK_FALSE(client->read_would_block());
  CHECK(client->read(buf, sizeof buf).status == Status::want_read);
  CHECK_FALSE(client->read_would_block());  // (three bytes wait in the record layer)
  client->feed(rec + 3, n - 3);
  Result r = client->read(buf, 2);  // part of the plaintext
  REQUIRE(r.status == Status::done);
  CHECK_FALSE(client->read_would_block());  // the rest is in hand
  r = client->read(buf, sizeof buf);
  REQUIRE(r.status == Status::done);
  CHECK(std::string(buf, r.bytes) == "llo");
  CHECK(client->read_would_block());

  // close_notify, then the end of the stream: reads say so, not want_read.
  REQUIRE(server->shutdown().status == Status::done);
  pump(*server, *client);
  CHECK_FALSE(client->read_would_block());
  CHECK(client->read(buf, sizeof buf).status == Status::closed);
  CHECK_FALSE(client->read_would_block());
  auto other = session(context(client_options()), "localhost");
  auto peer = session(context(server_options()));
  REQUIRE(handshake(*other, *peer).status == Status::done);
  if (!other->read_would_block()) other->read(buf, sizeof buf);
  other->feed_eof();
  CHECK_FALSE(other->read_would_block());
  CHECK(other->read(buf, sizeof buf).status == Status::closed_abruptly);
  // A failed session says its failure again rather than want_read.
  auto broken = session(context(client_options()), "localhost");
  auto peer2 = session(context(server_options()));
  REQUIRE(handshake(*broken, *peer2).status == Status::done);
  if (!broken->read_would_block()) broken->read(buf, sizeof buf);
  std::string garbage(40, '\x17');
  broken->feed(garbage.data(), garbage.size());
  CHECK(broken->read(buf, sizeof buf).status == Status::error);
  CHECK_FALSE(broken->read_would_block());
}

TEST_CASE("tls: verification failures say why", "[tls]") {
  SECTION("wrong name") {
    auto client = session(context(client_options()), "example.com");
    auto server = session(context(server_options()));
    Result r = handshake(*client, *server);
    REQUIRE(r.status == Status::error);
    CHECK(r.message.find("certificate verify failed: hostname mismatch") != std::string::npos);
  }
  SECTION("unknown issuer") {
    ContextOptions co;
    co.ca_pem = certs().client.cert;  // not the server's issuer
    auto client = session(context(co), "localhost");
    auto server = session(context(server_options()));
    Result r = handshake(*client, *server);
    REQUIRE(r.status == Status::error);
    CHECK(r.message.find("certificate verify failed") == 0);
  }
  SECTION("an IP address is checked against the IP names") {
    auto client = session(context(client_options()), "127.0.0.1");
    auto server = session(context(server_options()));
    CHECK(handshake(*client, *server).status == Status::done);
  }
  SECTION("verification off accepts anything") {
    ContextOptions co;
    co.verify = false;
    auto client = session(context(co), "example.com");
    auto server = session(context(server_options()));
    CHECK(handshake(*client, *server).status == Status::done);
  }
}

TEST_CASE("tls: mutual TLS", "[tls]") {
  ContextOptions so = server_options();
  so.verify = true;
  so.ca_pem = certs().ca.cert;
  auto server_ctx = context(so);
  SECTION("with a client certificate") {
    ContextOptions co = client_options();
    co.cert_pem = certs().client.cert;
    co.key_pem = certs().client.key;
    auto client = session(context(co), "localhost");
    auto server = session(server_ctx);
    REQUIRE(handshake(*client, *server).status == Status::done);
    // TLS 1.3: the server checks the certificate after the client is done.
    char buf[10];
    CHECK(server->read(buf, sizeof buf).status == Status::want_read);
    PeerCertificate pc = server->peer_certificate();
    CHECK(pc.subject == "CN=a client");
    REQUIRE(pc.names.size() == 1);
    CHECK(pc.names[0] == "client.test");
  }
  SECTION("without one") {
    auto client = session(context(client_options()), "localhost");
    auto server = session(server_ctx);
    Result r = handshake(*client, *server);
    if (r.status == Status::done) {  // TLS 1.3: the client learns it on its next read
      char buf[10];
      Result s = server->read(buf, sizeof buf);
      CHECK(s.status == Status::error);
      CHECK(s.message.find("certificate") != std::string::npos);
    } else {
      CHECK(r.status == Status::error);
    }
  }
}

TEST_CASE("tls: bad options are refused with a reason", "[tls]") {
  std::string err;
  ContextOptions o;
  o.min_version = "tls9";
  CHECK_FALSE(Context::create(o, &err));
  CHECK(err == "unknown protocol version 'tls9'");
  ContextOptions s;
  s.server = true;
  s.verify = false;
  CHECK_FALSE(Context::create(s, &err));
  CHECK(err == "a TLS server needs a certificate and its key");
  ContextOptions f;
  f.ca_file = "/nonexistent/ca.pem";
  CHECK_FALSE(Context::create(f, &err));
  CHECK(err.find("ca_file '/nonexistent/ca.pem'") == 0);
  ContextOptions k = server_options();
  k.key_pem = certs().client.key;
  CHECK_FALSE(Context::create(k, &err));
  CHECK(err.find("key: PEM text: key values mismatch") == 0);
}

TEST_CASE("tls: version limits", "[tls]") {
  ContextOptions co = client_options();
  co.max_version = "tls1.2";
  auto client = session(context(co), "localhost");
  auto server = session(context(server_options()));
  REQUIRE(handshake(*client, *server).status == Status::done);
  CHECK(client->version() == "TLSv1.2");
  ContextOptions so = server_options();
  so.min_version = "tls1.3";
  auto client2 = session(context(co), "localhost");
  auto server2 = session(context(so));
  CHECK(handshake(*client2, *server2).status == Status::error);
}
TEST_CASE("tls: a client resumes its last session with a server", "[tls]") {
  auto client_ctx = context(client_options());
  auto server_ctx = context(server_options());
  char buf[16];
  for (int round = 0; round < 2; round++) {
    auto client = session(client_ctx, "localhost");
    auto server = session(server_ctx);
    REQUIRE(handshake(*client, *server).status == Status::done);
    CHECK(client->session_reused() == (round == 1));
    // TLS 1.3 tickets come after the handshake: the client reads them.
    REQUIRE(server->write("x", 1).status == Status::done);
    pump(*server, *client);
    REQUIRE(client->read(buf, sizeof buf).status == Status::done);
    CHECK(client->peer_certificate().subject == "CN=localhost");
  }
  // Not offered to another name, nor kept when reuse is off.
  auto other = session(client_ctx, "127.0.0.1");
  auto server = session(server_ctx);
  REQUIRE(handshake(*other, *server).status == Status::done);
  CHECK_FALSE(other->session_reused());
  ContextOptions off = client_options();
  off.session_reuse = false;
  auto off_ctx = context(off);
  for (int round = 0; round < 2; round++) {
    auto client = session(off_ctx, "localhost");
    auto srv = session(server_ctx);
    REQUIRE(handshake(*client, *srv).status == Status::done);
    REQUIRE(srv->write("x", 1).status == Status::done);
    pump(*srv, *client);
    REQUIRE(client->read(buf, sizeof buf).status == Status::done);
    CHECK_FALSE(client->session_reused());
  }
}
#endif
