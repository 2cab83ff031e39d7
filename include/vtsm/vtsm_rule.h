/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The rules: every refusal of the TSM, the shims and the emulated device that follows
 * from a named rule carries it as data (an enum vtsm_rule), next to its status. The
 * socket ABI sends the rule's id ("TDI.4") in the ERROR message; docs/abi.md lists every
 * rule, one line each, and a unit test keeps that list and this one equal.
 *
 * X(SYM, "ID", STATUS, "meaning"): VTSM_RULE_SYM, its id, the status a refusal under the
 * rule comes with (VTSM_<STATUS>; OK for a rule that names an outcome, not a refusal,
 * and so comes with the status of the failure it follows), and a one-line meaning.
 * Families: PLAT platform, PDEV device connection, IDE streams and key slots, TVM, TDI
 * state table, GUEST requests, ABI socket ABI, and, on the device side, DEVTDI (TDISP
 * responder), IDEKM (IDE_KM responder), LINK (link check), VDM (vendor-defined messages);
 * CHUNK (SPDM chunk transfers) on either side.
 * The numbers are stable: a rule is never renumbered; new rules take new numbers.
 */
#ifndef VTSM_RULE_H
#define VTSM_RULE_H

#ifdef __cplusplus
extern "C" {
#endif

#define VTSM_RULE_LIST(X)                                                                          \
    X(PLAT_1, "PLAT.1", E_NOT_FOUND, "a device names a root port the platform has")                \
    X(PDEV_0, "PDEV.0", E_STATE, "a move not in the connection state table is refused")            \
    X(PDEV_1, "PDEV.1", E_STATE, "device_connect starts only from unconnected")                    \
    X(PDEV_2, "PDEV.2", E_STATE, "a connect completes to connected")                               \
    X(PDEV_3, "PDEV.3", E_STATE, "a failed or aborted connect frees the half-made session")        \
    X(PDEV_4, "PDEV.4", E_STATE, "device_reclaim starts only from connected")                      \
    X(PDEV_5, "PDEV.5", E_STATE, "a reclaim ends the session and wipes its keys")                  \
    X(PDEV_6, "PDEV.6", E_BUSY, "one DOE requester per device at a time")                          \
    X(PDEV_7, "PDEV.7", E_EXISTS, "a device sits under one root port")                             \
    X(PDEV_8, "PDEV.8", E_STATE, "only an unconnected device is removed")                          \
    X(PDEV_9, "PDEV.9", E_STATE, "a device with bound TDIs is reclaimed only with force")          \
    X(PDEV_10, "PDEV.10", E_STATE, "IDE, TDI and SPDM verbs need a connected device")              \
    X(PDEV_11, "PDEV.11", E_LIMIT, "at most 1024 devices are registered")                          \
    X(PDEV_12, "PDEV.12", OK, "a verb that loses the SPDM session disconnects the device")         \
    X(PDEV_13, "PDEV.13", E_NOT_FOUND, "a verb names a registered device")                         \
    X(IDE_1, "IDE.1", E_NO_STREAM, "stream IDs per root port, 0..streams-1, lowest free first")    \
    X(IDE_2, "IDE.2", E_LIMIT, "a stream takes 2 key slots of its root port, 4 in a refresh")      \
    X(IDE_3, "IDE.3", E_STATE, "IDE_REFRESH and IDE_LINK_CHECK need IDE streams")                  \
    X(TVM_1, "TVM.1", E_ABI_ARG, "a guest key is an uncompressed point on P-256")                  \
    X(TVM_2, "TVM.2", E_STATE, "a TVM with bound TDIs is not destroyed")                           \
    X(TVM_3, "TVM.3", E_EXISTS, "one TVM per guest key")                                           \
    X(TVM_4, "TVM.4", E_NOT_FOUND, "a request names a registered TVM")                             \
    X(TVM_5, "TVM.5", E_LIMIT, "at most 1024 TVMs are registered")                                 \
    X(TDI_0, "TDI.0", E_STATE, "a move not in the TDI state table is refused")                     \
    X(TDI_1, "TDI.1", E_STATE, "bind only from CONFIG_UNLOCKED (not bound twice)")                 \
    X(TDI_2, "TDI.2", E_STATE, "unbind only from CONFIG_LOCKED, RUN or ERROR")                     \
    X(TDI_3, "TDI.3", E_ABI_ROLE, "only the host binds and unbinds")                               \
    X(TDI_4, "TDI.4", E_STATE, "accept only from CONFIG_LOCKED")                                   \
    X(TDI_5, "TDI.5", E_NOT_OWNER, "only the owning guest accepts or rejects")                     \
    X(TDI_6, "TDI.6", E_NOT_OWNER, "only the owning guest reads INFO and sees the TDI")            \
    X(TDI_7, "TDI.7", E_PEER_STATE, "a device-reported ERROR moves the TDI to ERROR")              \
    X(TDI_8, "TDI.8", E_PEER_STATE, "a device state disagreeing moves the TDI to ERROR")           \
    X(TDI_9, "TDI.9", E_STATE, "no TDISP on a device connected ide_only")                          \
    X(GUEST_1, "GUEST.1", E_AUTH, "a guest request is signed with its TVM's key")                  \
    X(GUEST_2, "GUEST.2", E_REPLAY, "seq is strictly greater than the last accepted seq")          \
    X(GUEST_3, "GUEST.3", E_AUTH, "the body names the TVM of the envelope")                        \
    X(GUEST_4, "GUEST.4", E_ABI_ARG, "the body carries exactly the keys its operation takes")      \
    X(ABI_1, "ABI.1", E_ABI_NO_HELLO, "HELLO is the first message on a connection")                \
    X(ABI_2, "ABI.2", E_ABI_UNKNOWN_OP, "an opcode is one the TSM knows")                          \
    X(ABI_3, "ABI.3", E_ABI_VERSION, "HELLO offers a version both sides speak")                    \
    X(ABI_4, "ABI.4", E_ABI_ROLE, "an opcode is sent only by the roles it is for")                 \
    X(ABI_5, "ABI.5", E_ABI_SEQUENCE, "a message fits the sequence it arrives in")                 \
    X(ABI_6, "ABI.6", E_ABI_OVERSIZED, "a frame is at most 4 MiB")                                 \
    X(ABI_7, "ABI.7", E_ABI_MALFORMED, "a frame is one well-formed bounded CBOR map")              \
    X(ABI_8, "ABI.8", E_ABI_ARG, "every key has the type and range it takes")                      \
    X(ABI_9, "ABI.9", E_ABI_ARG, "a message carries only keys its opcode takes")                   \
    X(ABI_10, "ABI.10", E_LIMIT, "connections are capped per role and in all")                     \
    X(ABI_11, "ABI.11", E_LIMIT, "a reply fits one message: lists come in pages")                  \
    X(DEVTDI_1, "DEVTDI.1", E_PEER_ERROR, "LOCK_INTERFACE_REQ only in CONFIG_UNLOCKED")            \
    X(DEVTDI_2, "DEVTDI.2", E_PEER_ERROR, "GET_DEVICE_INTERFACE_REPORT in CONFIG_LOCKED or RUN")   \
    X(DEVTDI_3, "DEVTDI.3", E_PEER_ERROR, "START_INTERFACE_REQ only in CONFIG_LOCKED")             \
    X(DEVTDI_4, "DEVTDI.4", E_PEER_ERROR, "a wrong START nonce moves the TDI to ERROR")            \
    X(DEVTDI_5, "DEVTDI.5", OK, "STOP_INTERFACE_REQ returns the TDI to CONFIG_UNLOCKED")           \
    X(DEVTDI_6, "DEVTDI.6", E_PEER_ERROR, "FUNCTION_ID names a TDI of the device")                 \
    X(IDEKM_1, "IDEKM.1", E_PEER_MALFORMED, "an IDE_KM request parses")                            \
    X(IDEKM_2, "IDEKM.2", E_PEER_MALFORMED, "PortIndex names the device's port")                   \
    X(IDEKM_3, "IDEKM.3", E_PEER_MALFORMED, "StreamID is below the number of streams")             \
    X(IDEKM_4, "IDEKM.4", OK, "KEY_PROG never overwrites a live key set")                          \
    X(IDEKM_5, "IDEKM.5", E_STATE, "K_SET_GO only for a key set KEY_PROG programmed")              \
    X(LINK_1, "LINK.1", E_PEER_MALFORMED, "only check requests are checked")                       \
    X(LINK_2, "LINK.2", E_PEER_STATE, "the stream exists and the key set is live for RX")          \
    X(LINK_3, "LINK.3", E_REPLAY, "the counter is not below the next expected, not 2^64-1")        \
    X(LINK_4, "LINK.4", E_PEER_DECRYPT, "the MAC verifies under the RX key")                       \
    X(LINK_5, "LINK.5", E_PEER_STATE, "the key set is live for TX too, to answer")                 \
    X(VDM_1, "VDM.1", E_STATE, "PCI-SIG protocol messages only inside a secure session")           \
    X(PDEV_14, "PDEV.14", E_PEER_CAPS, "a connect with challenge needs a device with CHAL_CAP")    \
    X(PDEV_15, "PDEV.15", E_PEER_SIGNATURE, "CHALLENGE_AUTH is signed over M1/M2 by the leaf key") \
    X(PDEV_16, "PDEV.16", E_PEER_DIGEST, "CHALLENGE_AUTH CertChainHash is the slot chain's hash")  \
    X(IDE_4, "IDE.4", OK, "a connect first stops the key sets an earlier one left live")           \
    X(TDI_20, "TDI.20", E_STATE,                                                                   \
      "ACCEPT carries the report, measurement and lock digests now bound")                         \
    X(TDI_21, "TDI.21", E_PEER_STATE,                                                              \
      "a device whose report or measurements changed since LOCK goes to ERROR")                    \
    X(CHUNK_1, "CHUNK.1", E_PEER_MALFORMED, "every chunk of a transfer names its Handle")          \
    X(CHUNK_2, "CHUNK.2", E_PEER_MALFORMED, "ChunkSeqNo starts at 0 and counts up by one")         \
    X(CHUNK_3, "CHUNK.3", E_PEER_MALFORMED,                                                        \
      "chunks add up to LargeMessageSize, within DataTransferSize..MaxSPDMmsgSize")                \
    X(TDI_10, "TDI.10", E_STATE, "tdi_reset only from ERROR")                                      \
    X(TDI_11, "TDI.11", E_PEER_STATE,                                                              \
      "recovery relocks only with the bound or reference evidence")                                \
    X(DEVTDI_7, "DEVTDI.7", OK, "FUNCTION_LEVEL_RESET returns the TDI to CONFIG_UNLOCKED")         \
    X(DEVTDI_8, "DEVTDI.8", E_STATE, "no firmware update while a TDI is locked with NO_FW_UPDATE") \
    X(DEVTDI_9, "DEVTDI.9", E_PEER_STATE, "a firmware update moves locked TDIs to ERROR")          \
    X(DEVTDI_10, "DEVTDI.10", E_PEER_STATE, "a device error moves a locked TDI to ERROR")          \
    X(EVENT_1, "EVENT.1", OK, "SPDM keys are updated before seq nears its limit or the interval")  \
    X(EVENT_2, "EVENT.2", OK, "IDE keys are refreshed at the policy interval")                     \
    X(EVENT_3, "EVENT.3", OK, "a subscriber that leaves events unread is dropped as for replies")  \
    X(PDEV_17, "PDEV.17", OK, "a device reset behind the TSM (session unknown) is disconnected")   \
    X(PDEV_18, "PDEV.18", E_STATE, "host-native CMA is revoked while the TSM owns the device")     \
    X(TDI_22, "TDI.22", E_STATE, "a guest LOCKs only a CONFIG_UNLOCKED TDI assigned to it")        \
    X(TDI_23, "TDI.23", E_STATE, "a guest UNLOCKs only from CONFIG_LOCKED, RUN or ERROR")          \
    X(TDI_24, "TDI.24", E_STATE,                                                                   \
      "a guest DEBUG_WRITE forces ERROR only from CONFIG_LOCKED or RUN")                           \
    X(GUEST_5, "GUEST.5", E_ABI_ARG, "a guest request's scope is its operation's scope")           \
    X(GUEST_6, "GUEST.6", E_POLICY_REFUSED, "DEBUG_WRITE only for a TVM created with debug")       \
    X(IDE_5, "IDE.5", E_PEER_MALFORMED,                                                            \
      "QUERY_RESP holds the register blocks its capability declares")                              \
    X(IDE_6, "IDE.6", E_ABI_ARG, "stream_ids names ide_streams distinct IDs")                      \
    X(IDE_7, "IDE.7", E_NO_STREAM, "a host-named stream ID is a free stream ID of the root port")  \
    X(IDE_8, "IDE.8", E_PEER_CAPS, "no more streams than the device's selective IDE streams")      \
    X(LINK_6, "LINK.6", E_PEER_MALFORMED,                                                          \
      "a configuration write names a stream block and its registers")                              \
    X(IDE_9, "IDE.9", E_ABI_ARG, "ide_addr_ranges: 16-byte base/limit pairs, 1 MiB granular")      \
    X(IDE_10, "IDE.10", E_PEER_CAPS,                                                               \
      "no more address ranges than the device's association blocks")                               \
    X(IDE_11, "IDE.11", E_PEER_CAPS, "a Link IDE stream needs a device that supports Link IDE")    \
    X(MMIO_1, "MMIO.1", E_STATE,                                                                   \
      "the host maps a TDI's MMIO ranges only while it is CONFIG_LOCKED")                          \
    X(MMIO_2, "MMIO.2", E_NOT_FOUND,                                                               \
      "a mapping names an MMIO_RANGE of the TDI's interface report")                               \
    X(MMIO_3, "MMIO.3", E_STATE, "a range the guest validated is not mapped again")                \
    X(MMIO_4, "MMIO.4", E_STATE, "the guest validates only a range the host mapped")               \
    X(MMIO_5, "MMIO.5", E_STATE, "the guest validates a range at the GPA the host mapped it at")   \
    X(MMIO_6, "MMIO.6", E_STATE, "mapping and guest size are the range's reported size")           \
    X(MMIO_7, "MMIO.7", E_STATE, "a mapping is 4 KiB aligned and ends below 2^64")                 \
    X(MMIO_8, "MMIO.8", E_STATE, "no two mappings of one TVM overlap")                             \
    X(MMIO_9, "MMIO.9", E_POLICY_REFUSED, "an IS_NON_TEE_MEM range is never validated as private") \
    X(MMIO_10, "MMIO.10", E_POLICY_REFUSED,                                                        \
      "MSI-X table and PBA are private only if the report locks MSI-X")                            \
    X(MMIO_11, "MMIO.11", E_NOT_OWNER, "only the owning guest validates ranges and enables DMA")   \
    X(MMIO_12, "MMIO.12", E_STATE, "the guest validates ranges only while CONFIG_LOCKED or RUN")   \
    X(DMA_1, "DMA.1", E_STATE, "DMA is enabled only once every reported range is validated")       \
    X(DMA_2, "DMA.2", E_STATE, "DMA is enabled only while the TDI is CONFIG_LOCKED or RUN")        \
    X(DMA_3, "DMA.3", OK, "unbind and ERROR revoke every mapping, validation and DMA")             \
    X(PDEV_30, "PDEV.30", E_ABI_ARG, "a device name is a PCI address, [SSSS:]BB:DD.F")             \
    X(TDI_30, "TDI.30", E_PEER_STATE,                                                              \
      "a TDI declared at connect is CONFIG_UNLOCKED on the device")                                \
    X(TDI_31, "TDI.31", E_NOT_FOUND, "a device connected with tdis binds only those TDIs")

/* Statuses that imply a rule: a refusal with one of these statuses names this rule
 * unless it names another. X(STATUS, SYM). */
#define VTSM_RULE_BY_STATUS(X)                                                                     \
    X(E_ABI_NO_HELLO, ABI_1)                                                                       \
    X(E_ABI_UNKNOWN_OP, ABI_2)                                                                     \
    X(E_ABI_VERSION, ABI_3)                                                                        \
    X(E_ABI_ROLE, ABI_4)                                                                           \
    X(E_ABI_SEQUENCE, ABI_5)                                                                       \
    X(E_ABI_OVERSIZED, ABI_6)                                                                      \
    X(E_ABI_MALFORMED, ABI_7)                                                                      \
    X(E_ABI_ARG, ABI_8)

enum vtsm_rule {
    VTSM_RULE_NONE = 0,
#define VTSM_X_RULE_ENUM(sym, id, st, text) VTSM_RULE_##sym,
    VTSM_RULE_LIST(VTSM_X_RULE_ENUM)
#undef VTSM_X_RULE_ENUM
        VTSM_RULE_COUNT_
};

#ifdef __cplusplus
}
#endif

#endif
