# proto/: crypto primitives, SPDM crypto (signing format, key schedule, secured messages),
# certificate chains and trust.
vtsm_add_test(test_crypto SOURCES test_crypto.c LIBS vtsm_proto)
vtsm_add_test(test_spdm_crypto SOURCES test_spdm_crypto.c LIBS vtsm_proto)
vtsm_add_test(test_cert SOURCES test_cert.c LIBS vtsm_proto)
