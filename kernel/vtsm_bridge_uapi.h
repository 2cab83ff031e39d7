/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * vtsm kernel bridge: the fixed binary messages between the vtsm_bridge module and
 * the user-space bridge daemon (vtsm-kbridge), over the misc device /dev/vtsm_bridge.
 *
 *   read()   one struct vtsm_kb_event: an operation the PCI TSM core asked for
 *            (connect, disconnect, bind, unbind, guest request). Blocks until one
 *            is queued; O_NONBLOCK gives -EAGAIN; poll() says POLLIN.
 *   ioctl VTSM_KB_IOC_DOE   one DOE exchange on the mailbox of the device of a
 *            pending event (the only devices the daemon may reach), performed by
 *            the kernel's DOE core (pci_tsm_doe_transfer()).
 *   ioctl VTSM_KB_IOC_DONE  the result of a pending event; the waiting PCI TSM
 *            operation returns it.
 *
 * Test hook (module parameter test_hooks=1): /sys/class/misc/vtsm_bridge/test_bind
 * ("DEV TDI") and test_unbind ("DEV") call pci_tsm_bind() / pci_tsm_unbind() as a
 * VMM would when it assigns the function to a confidential VM.
 *
 * All fields are native-endian (the daemon runs on the same machine); reserved
 * fields must be zero. No CBOR here: the daemon speaks vtsm's ABI to tsmd.
 */
#ifndef VTSM_BRIDGE_UAPI_H
#define VTSM_BRIDGE_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VTSM_KB_DEV_NAME_MAX 32 /* "0000:00:03.0" and a NUL, with room */
#define VTSM_KB_DOE_MAX 4096	/* largest DOE payload carried (header excluded) */

enum vtsm_kb_op {
	VTSM_KB_OP_CONNECT = 1,
	VTSM_KB_OP_DISCONNECT = 2,
	VTSM_KB_OP_BIND = 3,
	VTSM_KB_OP_UNBIND = 4,
	VTSM_KB_OP_GUEST_REQ = 5,
};

/* One operation of the PCI TSM core, read() from the device. */
struct vtsm_kb_event {
	__u32 op;     /* enum vtsm_kb_op */
	__u32 id;     /* names the event in VTSM_KB_IOC_DOE / _DONE */
	__u32 tdi_id; /* bind: the TDI id the core passed */
	__u32 reserved;
	char dev[VTSM_KB_DEV_NAME_MAX]; /* PCI name of the function, NUL-terminated */
};

/* One DOE exchange for event id. type: 0 discovery, 1 CMA/SPDM, 2 secured CMA. The payloads
 * exclude the 8-byte DOE header; rsp_len comes back rounded up to whole dwords. */
struct vtsm_kb_doe {
	__u32 id;
	__u32 type;
	__u64 req; /* user pointer */
	__u64 rsp; /* user pointer */
	__u32 req_len;
	__u32 rsp_cap;
	__u32 rsp_len; /* out */
	__u32 reserved;
};

/* The result of event id: 0 or a negative errno. */
struct vtsm_kb_done {
	__u32 id;
	__s32 status;
};

#define VTSM_KB_IOC_MAGIC 'V'
#define VTSM_KB_IOC_DOE _IOWR(VTSM_KB_IOC_MAGIC, 1, struct vtsm_kb_doe)
#define VTSM_KB_IOC_DONE _IOW(VTSM_KB_IOC_MAGIC, 2, struct vtsm_kb_done)

#endif
