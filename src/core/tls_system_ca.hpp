// Where a TLS client that names no CA of its own finds the ones it trusts:
// the system's store, which is a different thing on each OS. One file per
// OS: unix/tls_system_ca.cpp (OpenSSL's default paths: the distribution's
// bundle) and win/tls_system_ca.cpp (the Windows certificate store, which
// OpenSSL 3 does not read by itself). Built only with TLS.
#pragma once

typedef struct ssl_ctx_st SSL_CTX;

namespace sock {
namespace tls {

// Add the system's trusted CAs to ctx's store. False when the store could
// not be read at all (OpenSSL's error queue says why).
bool load_system_ca(SSL_CTX* ctx);

}  // namespace tls
}  // namespace sock
