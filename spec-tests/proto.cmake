# proto/: crypto primitives, SPDM crypto (signing format, key schedule, secured messages),
# certificate chains and trust, the IDE_KM and TDISP codecs, COSE_Sign1 evidence and the
# IDE link model.
vtsm_add_test(test_crypto SOURCES test_crypto.c LIBS vtsm_proto)
vtsm_add_test(test_spdm_crypto SOURCES test_spdm_crypto.c LIBS vtsm_proto)
vtsm_add_test(test_cert SOURCES test_cert.c LIBS vtsm_proto)
vtsm_add_test(test_idekm SOURCES test_idekm.c LIBS vtsm_proto)
vtsm_add_test(test_tdisp SOURCES test_tdisp.c LIBS vtsm_proto)
vtsm_add_test(test_spdm_meas SOURCES test_spdm_meas.c LIBS vtsm_proto)
vtsm_add_test(test_cose SOURCES test_cose.c LIBS vtsm_proto)
vtsm_add_test(test_ide_link SOURCES test_ide_link.c LIBS vtsm_proto)
