/// Test-only certificates, valid 2000–2100, made with `openssl ca` for the TLS contract tests.
/// The keys protect nothing: they exist so a local server can present a chain the client must
/// verify against the CA file it is given.
enum TestCertificates {
    /// A CA (`CN=fulcrum-test-ca`) that signed `serverCertificate`.
    static let caCertificate = """
-----BEGIN CERTIFICATE-----
MIIBaDCCAQ6gAwIBAgICEAAwCgYIKoZIzj0EAwIwGjEYMBYGA1UEAwwPZnVsY3J1
bS10ZXN0LWNhMCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAaMRgw
FgYDVQQDDA9mdWxjcnVtLXRlc3QtY2EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AATgmDyyoV13dHGbUPtgVyLreLFkNHD0U8+rdwTQVDdQ6zp3IuQ5a/iDoTvbY1n9
6b5ML4zI3kVhcE+sDD7jg+QFo0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB
/wQEAwIBBjAdBgNVHQ4EFgQUjX3zqzLMkWqa6Gd7PkyKisJWjEwwCgYIKoZIzj0E
AwIDSAAwRQIhAMmRsjjuPOZHvji46r1vyeKS7aC7iZXaLWzQUQg55yGiAiAlH+RO
GulYWZWw4el3W2bqCt1uRiZEyieL0mftzXqzdg==
-----END CERTIFICATE-----
"""

    /// `CN=127.0.0.1`, subjectAltName IP 127.0.0.1 and DNS localhost, signed by `caCertificate`.
    static let serverCertificate = """
-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgICEAEwCgYIKoZIzj0EAwIwGjEYMBYGA1UEAwwPZnVsY3J1
bS10ZXN0LWNhMCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAUMRIw
EAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATW5qYC
pZ13rKKP5qG52O2rGuMbcIxzgehgENw4jUXx0fN8m0jrjVJ9QXn9mbOBW2bCAUCv
EUeaEqz3Q24FPOUVo4GSMIGPMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeA
MBMGA1UdJQQMMAoGCCsGAQUFBwMBMBoGA1UdEQQTMBGHBH8AAAGCCWxvY2FsaG9z
dDAfBgNVHSMEGDAWgBSNffOrMsyRaproZ3s+TIqKwlaMTDAdBgNVHQ4EFgQU62zq
plP/UBFXLzcr2VkudBtAB5cwCgYIKoZIzj0EAwIDSAAwRQIhAIvGBt1oM7Un8xkC
fLZsrHe267ds8GbCZSU6j26FE+lIAiBkpsOljqEjeivaBeQC2xwKHJnzwYXw+Zd8
nbUy05Gkvg==
-----END CERTIFICATE-----
"""

    /// The private key (P-256, PKCS#8) of `serverCertificate`.
    static let serverPrivateKey = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVWXS3BYM0mXZ5j+e
v/145sKNjtKqOQV1QUldxxa8DMehRANCAATW5qYCpZ13rKKP5qG52O2rGuMbcIxz
gehgENw4jUXx0fN8m0jrjVJ9QXn9mbOBW2bCAUCvEUeaEqz3Q24FPOUV
-----END PRIVATE KEY-----
"""

    /// A self-signed CA (`CN=unrelated-ca`) that signed nothing here: trusting only it must fail.
    static let unrelatedCACertificate = """
-----BEGIN CERTIFICATE-----
MIIBYjCCAQigAwIBAgICEAIwCgYIKoZIzj0EAwIwFzEVMBMGA1UEAwwMdW5yZWxh
dGVkLWNhMCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAXMRUwEwYD
VQQDDAx1bnJlbGF0ZWQtY2EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT+4G0v
2t516ffs0gaRULsyA5IIaYZXz66W+Xo1xT0VOfH2SlVrCSLGb519lLEgFVuLHs0z
P3SUaer83D+7LjIXo0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIB
BjAdBgNVHQ4EFgQUShMvQsKTr420pyJgodEKUTbhYEowCgYIKoZIzj0EAwIDSAAw
RQIhAMuYgKDqYz+ylQzZLUBiIgDGZqvrLX8LI99JUPyabJT8AiBXeeAcsw8GOUxR
pyCfJR2PZu2RGb1B96jTukiGf+6D2Q==
-----END CERTIFICATE-----
"""
}
