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
 *   ioctl VTSM_KB_IOC_GUEST_IN / _GUEST_OUT  the request bytes of a pending
 *            guest_req event, and its response bytes (before VTSM_KB_IOC_DONE).
 *
 * Test hooks (module parameter test_hooks=1): /sys/class/misc/vtsm_bridge/test_bind
 * ("DEV TDI") and test_unbind ("DEV") call pci_tsm_bind() / pci_tsm_unbind() as a
 * VMM would when it assigns the function to a confidential VM; the misc device
 * /dev/vtsm_bridge_test takes VTSM_KB_IOC_TEST_GUEST_REQ, which calls
 * pci_tsm_guest_req() as a VMM would for a TVM's request.
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
	__u32 op;			/* enum vtsm_kb_op */
	__u32 id;			/* names the event in VTSM_KB_IOC_DOE / _DONE */
	__u32 tdi_id;			/* bind, unbind, guest_req: the TDI id */
	__u32 in_len;			/* guest_req: bytes of the request (VTSM_KB_IOC_GUEST_IN) */
	char dev[VTSM_KB_DEV_NAME_MAX]; /* PCI name of the function, NUL-terminated */
	__u32 scope;			/* guest_req: enum pci_tsm_req_scope */
	__u32 out_cap;			/* guest_req: most response bytes the caller takes */
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

/* The request bytes of guest_req event id (GUEST_IN: buf/len in; len out = bytes
 * copied), or its response (GUEST_OUT: buf/len in, at most the event's out_cap) with
 * the TSM's result code for the guest. */
struct vtsm_kb_guest {
	__u32 id;
	__u32 len;
	__u64 buf; /* user pointer */
	__u64 tsm_code;
};

/* Test hook: pci_tsm_guest_req(dev, scope, in, in_len, out, out_cap, &tsm_code).
 * out_len is the response length (out_cap minus the residue the core returns). */
struct vtsm_kb_test_guest_req {
	char dev[VTSM_KB_DEV_NAME_MAX];
	__u32 scope;
	__u32 in_len;
	__u64 in;  /* user pointer */
	__u64 out; /* user pointer */
	__u32 out_cap;
	__u32 out_len;	/* out */
	__u64 tsm_code; /* out */
};

#define VTSM_KB_GUEST_MAX 65536 /* largest guest request or response carried */

#define VTSM_KB_IOC_MAGIC 'V'
#define VTSM_KB_IOC_DOE _IOWR(VTSM_KB_IOC_MAGIC, 1, struct vtsm_kb_doe)
#define VTSM_KB_IOC_DONE _IOW(VTSM_KB_IOC_MAGIC, 2, struct vtsm_kb_done)
#define VTSM_KB_IOC_GUEST_IN _IOWR(VTSM_KB_IOC_MAGIC, 3, struct vtsm_kb_guest)
#define VTSM_KB_IOC_GUEST_OUT _IOW(VTSM_KB_IOC_MAGIC, 4, struct vtsm_kb_guest)
#define VTSM_KB_IOC_TEST_GUEST_REQ _IOWR(VTSM_KB_IOC_MAGIC, 5, struct vtsm_kb_test_guest_req)

#endif
