// The system's trusted CAs on Windows: the certificate store's "ROOT"
// (trust anchors) and "CA" (intermediates, which help complete a chain a
// server sent incomplete; they are not anchors: a chain must still end in a
// root) collections, as the current user sees them. OpenSSL 3 does not read
// them by itself: its default paths are a file and a directory under its
// build-time OPENSSLDIR, which a Windows machine seldom has. Those are still
// read first, for whoever put a bundle there (or names one in SSL_CERT_FILE).
//
// A certificate restricted to uses other than server authentication (an
// enhanced key usage without it, or the store's properties allowing none)
// is left out, as Windows' own TLS would not trust it for a server either.

// (wincrypt.h before OpenSSL: OpenSSL undoes the names of its types that
// wincrypt.h defines as macros.)
#include <windows.h>
#include <wincrypt.h>

#include "../tls_system_ca.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstring>
#include <vector>

namespace sock {
namespace tls {

namespace {

// Whether the store lets `cert` vouch for a TLS server.
bool serves_server_auth(const CERT_CONTEXT* cert) {
  DWORD size = 0;
  if (!CertGetEnhancedKeyUsage(cert, 0, nullptr, &size)) {
    // No usage property or extension at all: valid for every use.
    return GetLastError() == static_cast<DWORD>(CRYPT_E_NOT_FOUND);
  }
  std::vector<unsigned char> mem(size);
  auto* usage = reinterpret_cast<CERT_ENHKEY_USAGE*>(mem.data());
  if (!CertGetEnhancedKeyUsage(cert, 0, usage, &size)) return false;
  if (usage->cUsageIdentifier == 0) {
    // None listed: every use when nothing restricts it, else none.
    return GetLastError() == static_cast<DWORD>(CRYPT_E_NOT_FOUND);
  }
  for (DWORD i = 0; i < usage->cUsageIdentifier; i++)
    if (std::strcmp(usage->rgpszUsageIdentifier[i], szOID_PKIX_KP_SERVER_AUTH) == 0) return true;
  return false;
}

void add_store(X509_STORE* store, const wchar_t* name) {
  HCERTSTORE h = CertOpenSystemStoreW(0, name);
  if (!h) return;  // (a store that is not there holds nothing to trust)
  const CERT_CONTEXT* cert = nullptr;
  while ((cert = CertEnumCertificatesInStore(h, cert)) != nullptr) {
    if (cert->dwCertEncodingType != X509_ASN_ENCODING || !serves_server_auth(cert)) continue;
    const unsigned char* der = cert->pbCertEncoded;
    X509* x = d2i_X509(nullptr, &der, static_cast<long>(cert->cbCertEncoded));
    if (!x) continue;              // one OpenSSL cannot read: the others still count
    X509_STORE_add_cert(store, x);  // (takes its own reference; a duplicate is no error)
    X509_free(x);
  }
  CertCloseStore(h, 0);
}

}  // namespace

bool load_system_ca(SSL_CTX* ctx) {
  SSL_CTX_set_default_verify_paths(ctx);  // (nothing there is the usual case, and no error)
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  add_store(store, L"ROOT");
  add_store(store, L"CA");
  ERR_clear_error();  // (what the skipped certificates left)
  return true;
}

}  // namespace tls
}  // namespace sock
