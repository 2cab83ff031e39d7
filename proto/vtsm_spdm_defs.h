/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DSP0274 (SPDM 1.2 / 1.3) constants shared by the requester and the responder.
 * Names are the spec's own tokens. Values checked against DSP0274 1.3 as transcribed in
 * DMTF libspdm include/industry_standard/{spdm.h, spdm_secured_message.h, pci_idekm.h,
 * pci_tdisp.h}.
 */
#ifndef VTSM_SPDM_DEFS_H
#define VTSM_SPDM_DEFS_H

#include "vtsm_spdm_crypto.h"

/* Request codes */
#define SPDM_GET_DIGESTS                   0x81
#define SPDM_GET_CERTIFICATE               0x82
#define SPDM_CHALLENGE                     0x83
#define SPDM_GET_VERSION                   0x84
#define SPDM_CHUNK_SEND                    0x85
#define SPDM_CHUNK_GET                     0x86
#define SPDM_GET_MEASUREMENTS              0xE0
#define SPDM_GET_CAPABILITIES              0xE1
#define SPDM_NEGOTIATE_ALGORITHMS          0xE3
#define SPDM_KEY_EXCHANGE                  0xE4
#define SPDM_FINISH                        0xE5
#define SPDM_PSK_EXCHANGE                  0xE6
#define SPDM_PSK_FINISH                    0xE7
#define SPDM_HEARTBEAT                     0xE8
#define SPDM_KEY_UPDATE                    0xE9
#define SPDM_GET_ENCAPSULATED_REQUEST      0xEA
#define SPDM_DELIVER_ENCAPSULATED_RESPONSE 0xEB
#define SPDM_END_SESSION                   0xEC
#define SPDM_GET_CSR                       0xED
#define SPDM_SET_CERTIFICATE               0xEE
#define SPDM_GET_MEASUREMENT_EXTENSION_LOG 0xEF /* 1.3 */
#define SPDM_GET_ENDPOINT_INFO             0x87 /* 1.3 */
#define SPDM_GET_SUPPORTED_EVENT_TYPES     0xE2 /* 1.3 */
#define SPDM_SUBSCRIBE_EVENT_TYPES         0xF0 /* 1.3 */
#define SPDM_SEND_EVENT                    0xF1 /* 1.3 */
#define SPDM_GET_KEY_PAIR_INFO             0xFC /* 1.3 */
#define SPDM_SET_KEY_PAIR_INFO             0xFD /* 1.3 */
#define SPDM_VENDOR_DEFINED_REQUEST        0xFE
#define SPDM_RESPOND_IF_READY              0xFF

/* Response codes */
#define SPDM_DIGESTS                   0x01
#define SPDM_CERTIFICATE               0x02
#define SPDM_CHALLENGE_AUTH            0x03
#define SPDM_VERSION                   0x04
#define SPDM_CHUNK_SEND_ACK            0x05
#define SPDM_CHUNK_RESPONSE            0x06
#define SPDM_ENDPOINT_INFO             0x07 /* 1.3 */
#define SPDM_MEASUREMENTS              0x60
#define SPDM_CAPABILITIES              0x61
#define SPDM_ALGORITHMS                0x63
#define SPDM_KEY_EXCHANGE_RSP          0x64
#define SPDM_FINISH_RSP                0x65
#define SPDM_PSK_EXCHANGE_RSP          0x66
#define SPDM_PSK_FINISH_RSP            0x67
#define SPDM_HEARTBEAT_ACK             0x68
#define SPDM_KEY_UPDATE_ACK            0x69
#define SPDM_ENCAPSULATED_REQUEST      0x6A
#define SPDM_ENCAPSULATED_RESPONSE_ACK 0x6B
#define SPDM_END_SESSION_ACK           0x6C
#define SPDM_CSR                       0x6D
#define SPDM_SET_CERTIFICATE_RSP       0x6E
#define SPDM_MEASUREMENT_EXTENSION_LOG 0x6F /* 1.3 */
#define SPDM_SUPPORTED_EVENT_TYPES     0x62 /* 1.3 */
#define SPDM_SUBSCRIBE_EVENT_TYPES_ACK 0x70 /* 1.3 */
#define SPDM_EVENT_ACK                 0x71 /* 1.3 */
#define SPDM_KEY_PAIR_INFO             0x7C /* 1.3 */
#define SPDM_SET_KEY_PAIR_INFO_ACK     0x7D /* 1.3 */
#define SPDM_VENDOR_DEFINED_RESPONSE   0x7E
#define SPDM_ERROR                     0x7F

/* ERROR codes */
#define SPDM_ERR_INVALID_REQUEST        0x01
#define SPDM_ERR_INVALID_SESSION        0x02 /* 1.1 only; deprecated in 1.2 */
#define SPDM_ERR_BUSY                   0x03
#define SPDM_ERR_UNEXPECTED_REQUEST     0x04
#define SPDM_ERR_UNSPECIFIED            0x05
#define SPDM_ERR_DECRYPT_ERROR          0x06
#define SPDM_ERR_UNSUPPORTED_REQUEST    0x07
#define SPDM_ERR_REQUEST_IN_FLIGHT      0x08
#define SPDM_ERR_INVALID_RESPONSE_CODE  0x09
#define SPDM_ERR_SESSION_LIMIT_EXCEEDED 0x0A
#define SPDM_ERR_SESSION_REQUIRED       0x0B
#define SPDM_ERR_RESET_REQUIRED         0x0C
#define SPDM_ERR_RESPONSE_TOO_LARGE     0x0D
#define SPDM_ERR_REQUEST_TOO_LARGE      0x0E
#define SPDM_ERR_LARGE_RESPONSE         0x0F
#define SPDM_ERR_MESSAGE_LOST           0x10
#define SPDM_ERR_VERSION_MISMATCH       0x41
#define SPDM_ERR_RESPONSE_NOT_READY     0x42
#define SPDM_ERR_REQUEST_RESYNCH        0x43
#define SPDM_ERR_VENDOR_DEFINED         0xFF

/* CAPABILITIES Flags (responder) / GET_CAPABILITIES Flags (requester) */
#define SPDM_CAP_CACHE                  (1u << 0)
#define SPDM_CAP_CERT                   (1u << 1)
#define SPDM_CAP_CHAL                   (1u << 2)
#define SPDM_CAP_MEAS_NOSIG             (1u << 3) /* MEAS_CAP = 01b */
#define SPDM_CAP_MEAS_SIG               (2u << 3) /* MEAS_CAP = 10b */
#define SPDM_CAP_MEAS_MASK              (3u << 3)
#define SPDM_CAP_MEAS_FRESH             (1u << 5)
#define SPDM_CAP_ENCRYPT                (1u << 6)
#define SPDM_CAP_MAC                    (1u << 7)
#define SPDM_CAP_MUT_AUTH               (1u << 8)
#define SPDM_CAP_KEY_EX                 (1u << 9)
#define SPDM_CAP_PSK_MASK               (3u << 10)
#define SPDM_CAP_ENCAP                  (1u << 12)
#define SPDM_CAP_HBEAT                  (1u << 13)
#define SPDM_CAP_KEY_UPD                (1u << 14)
#define SPDM_CAP_HANDSHAKE_IN_THE_CLEAR (1u << 15)
#define SPDM_CAP_PUB_KEY_ID             (1u << 16)
#define SPDM_CAP_CHUNK                  (1u << 17)
#define SPDM_CAP_ALIAS_CERT             (1u << 18)
#define SPDM_CAP_SET_CERT               (1u << 19) /* 1.2 */
#define SPDM_CAP_LARGE_RESP             (1u << 31) /* 1.4 */
#define SPDM_CAP_CSR                    (1u << 20) /* 1.2 */
#define SPDM_CAP_CERT_INSTALL_RESET     (1u << 21) /* 1.2 */
#define SPDM_CAP_EP_INFO_MASK           (3u << 22) /* 1.3: 01b no signature, 10b signed */
#define SPDM_CAP_MEL                    (1u << 24) /* 1.3 */
#define SPDM_CAP_EVENT                  (1u << 25) /* 1.3 */
#define SPDM_CAP_MULTI_KEY_MASK         (3u << 26) /* 1.3 */
#define SPDM_CAP_GET_KEY_PAIR_INFO      (1u << 28) /* 1.3 */
#define SPDM_CAP_SET_KEY_PAIR_INFO      (1u << 29) /* 1.3 */

/* NEGOTIATE_ALGORITHMS */
#define SPDM_MEAS_SPEC_DMTF         (1u << 0)
#define SPDM_ASYM_ECDSA_P256        (1u << 4)
#define SPDM_ASYM_ECDSA_P384        (1u << 7)
#define SPDM_HASH_SHA256            (1u << 0)
#define SPDM_HASH_SHA384            (1u << 1)
#define SPDM_MEAS_HASH_RAW          (1u << 0)
#define SPDM_MEAS_HASH_SHA256       (1u << 1)
#define SPDM_MEAS_HASH_SHA384       (1u << 2)
#define SPDM_MEAS_HASH_SHA512       (1u << 3)
#define SPDM_MEAS_HASH_SHA3_256     (1u << 4)
#define SPDM_MEAS_HASH_SHA3_384     (1u << 5)
#define SPDM_MEAS_HASH_SHA3_512     (1u << 6)
#define SPDM_MEAS_HASH_SM3_256      (1u << 7) /* 1.2 */
#define SPDM_ALG_TYPE_DHE           2
#define SPDM_ALG_TYPE_AEAD          3
#define SPDM_ALG_TYPE_REQ_BASE_ASYM 4
#define SPDM_ALG_TYPE_KEY_SCHEDULE  5
#define SPDM_DHE_SECP256R1          (1u << 3)
#define SPDM_DHE_SECP384R1          (1u << 4)
#define SPDM_AEAD_AES_128_GCM       (1u << 0)
#define SPDM_AEAD_AES_256_GCM       (1u << 1)
#define SPDM_KEY_SCHEDULE_SPDM      (1u << 0)
#define SPDM_OPAQUE_DATA_FMT_0      (1u << 0)
#define SPDM_OPAQUE_DATA_FMT_1      (1u << 1)
#define SPDM_OPAQUE_DATA_FMT_MASK   0x0Fu
#define SPDM_MAX_OPAQUE_DATA        1024 /* DSP0274: OpaqueDataLength at most */
/* VENDOR_DEFINED_REQUEST/RESPONSE Param1 bit 7 (1.4): the large form, whose 2-byte
 * ReqLength/RespLength is reserved and followed by a 4-byte LargeReqLength/LargeRespLength. */
#define SPDM_VDM_LARGE 0x80u

/* GET_MEASUREMENTS */
#define SPDM_MEAS_ATTR_SIGNATURE     (1u << 0)
#define SPDM_MEAS_ATTR_RAW_BITSTREAM (1u << 1)
#define SPDM_MEAS_OP_COUNT           0x00
#define SPDM_MEAS_OP_ALL             0xFF
/* MEASUREMENTS Param2 bits 5:4 (1.2+) */
#define SPDM_MEAS_CONTENT_CHANGE_MASK          0x30
#define SPDM_MEAS_CONTENT_CHANGE_NONE_DETECTED 0x00 /* no detection support */
#define SPDM_MEAS_CONTENT_CHANGE_DETECTED      0x10
#define SPDM_MEAS_CONTENT_NO_CHANGE            0x20
/* DMTF measurement block: DMTFSpecMeasurementValueType */
#define SPDM_MEAS_TYPE_IMMUTABLE_ROM    0
#define SPDM_MEAS_TYPE_MUTABLE_FIRMWARE 1
#define SPDM_MEAS_TYPE_HW_CONFIG        2
#define SPDM_MEAS_TYPE_FW_CONFIG        3
#define SPDM_MEAS_TYPE_MANIFEST         4
#define SPDM_MEAS_TYPE_DEVICE_MODE      5
#define SPDM_MEAS_TYPE_VERSION          6
#define SPDM_MEAS_TYPE_SVN              7
#define SPDM_MEAS_TYPE_RAW_BIT_STREAM   0x80

/* CHALLENGE / KEY_EXCHANGE Param1: measurement summary hash type */
#define SPDM_MEAS_SUMMARY_HASH_NONE 0x00
#define SPDM_MEAS_SUMMARY_HASH_TCB  0x01
#define SPDM_MEAS_SUMMARY_HASH_ALL  0xFF

/* KEY_EXCHANGE_RSP MutAuthRequested */
#define SPDM_KEY_EXCHANGE_MUT_AUTH_REQUESTED        (1u << 0)
#define SPDM_KEY_EXCHANGE_MUT_AUTH_WITH_ENCAP       (1u << 1)
#define SPDM_KEY_EXCHANGE_MUT_AUTH_WITH_GET_DIGESTS (1u << 2)
/* KEY_EXCHANGE SessionPolicy */
#define SPDM_KEY_EXCHANGE_SESSION_POLICY_TERMINATION_RUNTIME_UPDATE (1u << 0)
/* FINISH Param1 */
#define SPDM_FINISH_SIGNATURE_INCLUDED (1u << 0)
/* KEY_UPDATE KeyOperation (Param1) */
#define SPDM_KEY_UPDATE_OP_UPDATE_KEY      1
#define SPDM_KEY_UPDATE_OP_UPDATE_ALL_KEYS 2
#define SPDM_KEY_UPDATE_OP_VERIFY_NEW_KEY  3
/* END_SESSION Param1 */
#define SPDM_END_SESSION_PRESERVE_NEGOTIATED_STATE_CLEAR (1u << 0)

#define SPDM_NONCE_SIZE             32
#define SPDM_RANDOM_SIZE            32
#define SPDM_MAX_SLOTS              8
#define SPDM_REQUESTER_CONTEXT_SIZE 8 /* 1.3 GET_MEASUREMENTS / CHALLENGE */

/* DSP0274 M1/M2: a requester that issues one of these requests (in or out of a session)
 * without completing CHALLENGE first resets M1/M2 (messages B and C) to null. */
static inline int vtsm_spdm_resets_m1m2(uint8_t request_code)
{
    switch (request_code) {
    case SPDM_GET_MEASUREMENTS:
    case SPDM_KEY_EXCHANGE:
    case SPDM_FINISH:
    case SPDM_PSK_EXCHANGE:
    case SPDM_PSK_FINISH:
    case SPDM_KEY_UPDATE:
    case SPDM_HEARTBEAT:
    case SPDM_GET_ENCAPSULATED_REQUEST:
    case SPDM_DELIVER_ENCAPSULATED_RESPONSE:
    case SPDM_END_SESSION:
        return 1;
    default:
        return 0;
    }
}

/* Registry IDs (StandardID of VENDOR_DEFINED messages, opaque element IDs) */
#define SPDM_REGISTRY_ID_DMTF 0x00

/* PCI-SIG vendor-defined messages (IDE_KM, TDISP) */
#define SPDM_REGISTRY_ID_PCISIG 0x03
#define PCISIG_VENDOR_ID        0x0001
#define PCI_PROTOCOL_ID_IDE_KM  0x00
#define PCI_PROTOCOL_ID_TDISP   0x01

#endif
