/* SPDX-License-Identifier: BSD-3-Clause */
/* Stands in for cbor.h when tsmd's object model is compiled on its own (spec-tests/tsm.cmake):
 * the object model (pdev, tdi, tvm, ide, platform) must not include it. */
#error                                                                                             \
    "cbor.h included by the object model: CBOR and the ABI codec stay in the verbs, replies and server"
