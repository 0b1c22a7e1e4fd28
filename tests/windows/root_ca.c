/* Puts a CA certificate (one PEM file) into the current user's ROOT
 * certificate store, or takes it out again: the fixture of
 * tests/lua/test_tls_system_ca.lua under Wine (tests/windows.cmake), so that
 * a TLS client naming no CA is seen to trust what that store holds. Under
 * Wine the store lives in the test prefix's registry; on a real Windows
 * adding a root asks the user first, so the fixture is not registered there.
 *
 *   root_ca add|remove CA.pem
 */
#include <windows.h>
#include <wincrypt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "root_ca: %s failed (error %lu)\n", what, (unsigned long)GetLastError());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "remove") != 0)) {
        fprintf(stderr, "usage: root_ca add|remove CA.pem\n");
        return 2;
    }
    static char pem[65536];
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    size_t pem_len = fread(pem, 1, sizeof pem, f);
    fclose(f);

    DWORD der_len = 0;
    if (!CryptStringToBinaryA(pem, (DWORD)pem_len, CRYPT_STRING_BASE64HEADER, NULL, &der_len, NULL, NULL))
        return fail("reading the PEM");
    BYTE *der = malloc(der_len);
    if (!der || !CryptStringToBinaryA(pem, (DWORD)pem_len, CRYPT_STRING_BASE64HEADER, der, &der_len, NULL, NULL))
        return fail("decoding the PEM");

    HCERTSTORE store = CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, CERT_SYSTEM_STORE_CURRENT_USER, L"ROOT");
    if (!store) return fail("opening the ROOT store");
    int rc = 0;
    if (strcmp(argv[1], "add") == 0) {
        if (!CertAddEncodedCertificateToStore(store, X509_ASN_ENCODING, der, der_len,
                                              CERT_STORE_ADD_REPLACE_EXISTING, NULL))
            rc = fail("adding the certificate");
    } else {
        PCCERT_CONTEXT want = CertCreateCertificateContext(X509_ASN_ENCODING, der, der_len);
        if (!want) {
            rc = fail("reading the certificate");
        } else {
            PCCERT_CONTEXT found = CertFindCertificateInStore(store, X509_ASN_ENCODING, 0, CERT_FIND_EXISTING,
                                                              want, NULL);
            if (found && !CertDeleteCertificateFromStore(found)) rc = fail("removing the certificate");
            CertFreeCertificateContext(want);
        }
    }
    CertCloseStore(store, 0);
    free(der);
    if (rc == 0) printf("root_ca: %s %s: done\n", argv[1], argv[2]);
    return rc;
}
