# Socket ABI codec: framing, bounded decoding, map helpers, JSON printer.
vtsm_add_test(test_abi SOURCES test_abi.c LIBS vtsm_abi)
