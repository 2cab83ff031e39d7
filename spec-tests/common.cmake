# common/ and the transport framing in proto/ (DOE objects, spdm-emu socket frames).
vtsm_add_test(test_common SOURCES test_common.c LIBS vtsm_common)
vtsm_add_test(test_doe SOURCES test_doe.c LIBS vtsm_proto)
