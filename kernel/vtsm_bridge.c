// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * vtsm_bridge: a link TSM for the Linux PCI TSM core whose firmware is vtsm's tsmd.
 *
 * The module registers a TSM device (tsm_register()) with link operations. Each
 * operation the core calls (connect, disconnect, bind, unbind, guest_req) becomes
 * an event on the misc device /dev/vtsm_bridge and waits for its result. The
 * user-space daemon (vtsm-kbridge) reads the event, runs the matching verb on tsmd
 * through the host shim, and performs every DOE exchange tsmd asks for through
 * VTSM_KB_IOC_DOE: the kernel's own DOE core carries it over the device's mailbox
 * (pci_tsm_doe_transfer()). The message formats are in vtsm_bridge_uapi.h.
 *
 * Emulation aid: a device model without the TEE-IO bit in Device Capabilities and
 * without an IDE capability (QEMU's nvme) is not a DSM to the core. The parameter
 * emulate_tee=BDF[,BDF...] sets PCI_EXP_DEVCAP_TEE in the kernel's cached copy of
 * those functions' Device Capabilities before the TSM registers, and clears it again
 * after it unregisters. It changes only the kernel's view, never the device.
 */
#include <linux/completion.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/pci-doe.h>
#include <linux/pci-tsm.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/tsm.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "vtsm_bridge_uapi.h"

static char *emulate_tee;
module_param(emulate_tee, charp, 0444);
MODULE_PARM_DESC(
	emulate_tee,
	"comma-separated PCI functions (0000:00:03.0) whose kernel view gets the TEE-IO bit");

static bool test_hooks;
module_param(test_hooks, bool, 0444);
MODULE_PARM_DESC(test_hooks, "test_bind/test_unbind and /dev/vtsm_bridge_test: the core's bind and "
			     "guest_req without a VMM");

static unsigned int op_timeout_s = 60;
module_param(op_timeout_s, uint, 0644);
MODULE_PARM_DESC(op_timeout_s, "seconds an operation waits for the daemon");

/* Per-function context: the core's pf0 context plus ours. */
struct vtsm_kb_pdev {
	struct pci_tsm_pf0 pf0;
};

struct vtsm_kb_tdi {
	struct pci_tdi tdi;
};

/* One operation waiting for the daemon. */
struct vtsm_kb_req {
	struct list_head node;
	struct vtsm_kb_event ev;
	struct pci_dev *pdev;
	bool delivered;
	int status;
	struct completion done;
	/* guest_req: the request bytes, and the response the daemon gives back */
	void *in;
	void *out;
	size_t out_len;
	u64 tsm_code;
};

static struct tsm_dev *kb_tsm;
static DEFINE_MUTEX(kb_lock); /* kb_reqs, kb_next_id, kb_open, DOE exchanges */
static LIST_HEAD(kb_reqs);
static u32 kb_next_id = 1;
static bool kb_open;
static DECLARE_WAIT_QUEUE_HEAD(kb_readq);

/* Functions whose TEE-IO bit this module set, to clear at exit. */
#define KB_MAX_EMULATED 8
static struct pci_dev *kb_emulated[KB_MAX_EMULATED];

static struct vtsm_kb_req *kb_find(u32 id)
{
	struct vtsm_kb_req *r;

	lockdep_assert_held(&kb_lock);
	list_for_each_entry(r, &kb_reqs, node)
		if (r->ev.id == id)
			return r;
	return NULL;
}

/*
 * Queue r (its ev filled but for the id) for the daemon, wait for its
 * VTSM_KB_IOC_DONE and return its status. Without a daemon the operation fails at
 * once with -ENODEV. r is off the queue on return: the caller owns it again.
 */
static int kb_submit(struct vtsm_kb_req *r)
{
	long left;
	int rc;

	init_completion(&r->done);
	strscpy(r->ev.dev, pci_name(r->pdev), sizeof(r->ev.dev));
	mutex_lock(&kb_lock);
	if (!kb_open) {
		mutex_unlock(&kb_lock);
		pci_warn(r->pdev, "vtsm: no bridge daemon\n");
		return -ENODEV;
	}
	r->ev.id = kb_next_id++;
	if (!kb_next_id)
		kb_next_id = 1;
	list_add_tail(&r->node, &kb_reqs);
	mutex_unlock(&kb_lock);
	wake_up_interruptible(&kb_readq);

	left = wait_for_completion_timeout(&r->done, op_timeout_s * HZ);

	mutex_lock(&kb_lock);
	list_del(&r->node);
	rc = left ? r->status : -ETIMEDOUT;
	mutex_unlock(&kb_lock);
	pci_dbg(r->pdev, "vtsm: op %u id %u: %d\n", r->ev.op, r->ev.id, rc);
	return rc;
}

/* Queue op for pdev and wait for its result. */
static int kb_call(struct pci_dev *pdev, u32 op, u32 tdi_id)
{
	struct vtsm_kb_req *r;
	int rc;

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	r->pdev = pdev;
	r->ev.op = op;
	r->ev.tdi_id = tdi_id;
	rc = kb_submit(r);
	kfree(r);
	return rc;
}

static struct pci_tsm *kb_probe(struct tsm_dev *tsm_dev, struct pci_dev *pdev)
{
	struct vtsm_kb_pdev *p;
	int rc;

	/* Sub-functions of a connected DSM are not managed: only function 0. */
	if (!is_pci_tsm_pf0(pdev))
		return NULL;
	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return NULL;
	rc = pci_tsm_pf0_constructor(pdev, &p->pf0, tsm_dev);
	if (rc) {
		pci_tsm_pf0_destructor(&p->pf0);
		kfree(p);
		return NULL;
	}
	pci_info(pdev, "vtsm: probe\n");
	return &p->pf0.base_tsm;
}

static void kb_remove(struct pci_tsm *tsm)
{
	struct vtsm_kb_pdev *p = container_of(tsm, struct vtsm_kb_pdev, pf0.base_tsm);

	pci_info(tsm->pdev, "vtsm: remove\n");
	pci_tsm_pf0_destructor(&p->pf0);
	kfree(p);
}

static int kb_connect(struct pci_dev *pdev)
{
	int rc = kb_call(pdev, VTSM_KB_OP_CONNECT, 0);

	pci_info(pdev, "vtsm: connect: %d\n", rc);
	return rc;
}

static void kb_disconnect(struct pci_dev *pdev)
{
	int rc = kb_call(pdev, VTSM_KB_OP_DISCONNECT, 0);

	pci_info(pdev, "vtsm: disconnect: %d\n", rc);
}

static struct pci_tdi *kb_bind(struct pci_dev *pdev, struct kvm *kvm, u32 tdi_id)
{
	struct vtsm_kb_tdi *t;
	int rc;

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return ERR_PTR(-ENOMEM);
	rc = kb_call(pdev, VTSM_KB_OP_BIND, tdi_id);
	pci_info(pdev, "vtsm: bind tdi %u: %d\n", tdi_id, rc);
	if (rc) {
		kfree(t);
		return ERR_PTR(rc);
	}
	pci_tsm_tdi_constructor(pdev, &t->tdi, kvm, tdi_id);
	return &t->tdi;
}

static void kb_unbind(struct pci_tdi *tdi)
{
	struct vtsm_kb_tdi *t = container_of(tdi, struct vtsm_kb_tdi, tdi);
	int rc = kb_call(tdi->pdev, VTSM_KB_OP_UNBIND, tdi->tdi_id);

	pci_info(tdi->pdev, "vtsm: unbind tdi %u: %d\n", tdi->tdi_id, rc);
	kfree(t);
}

/*
 * A TVM's request (vtsm's signed guest envelope, opaque here) goes to the daemon,
 * which relays it to tsmd; tsmd's answer comes back as the response. The kernel
 * neither reads nor changes either: it is not in the TVM's trust boundary.
 * Returns the residue (out_len minus the response length), as the core expects.
 */
static ssize_t kb_guest_req(struct pci_tdi *tdi, enum pci_tsm_req_scope scope, sockptr_t req_in,
			    size_t in_len, sockptr_t req_out, size_t out_len, u64 *tsm_code)
{
	struct vtsm_kb_req *r;
	ssize_t rc;

	if (!in_len || in_len > VTSM_KB_GUEST_MAX)
		return -EINVAL;
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	r->pdev = tdi->pdev;
	r->ev.op = VTSM_KB_OP_GUEST_REQ;
	r->ev.tdi_id = tdi->tdi_id;
	r->ev.scope = scope;
	r->ev.in_len = in_len;
	r->ev.out_cap = min_t(size_t, out_len, VTSM_KB_GUEST_MAX);
	r->in = kvmalloc(in_len, GFP_KERNEL);
	r->out = kvzalloc(r->ev.out_cap ? r->ev.out_cap : 1, GFP_KERNEL);
	if (!r->in || !r->out) {
		rc = -ENOMEM;
		goto out;
	}
	if (copy_from_sockptr(r->in, req_in, in_len)) {
		rc = -EFAULT;
		goto out;
	}
	rc = kb_submit(r);
	if (rc)
		goto out;
	if (r->out_len && copy_to_sockptr(req_out, r->out, r->out_len)) {
		rc = -EFAULT;
		goto out;
	}
	*tsm_code = r->tsm_code;
	rc = out_len - r->out_len;
out:
	pci_info(tdi->pdev, "vtsm: guest_req tdi %u scope %d: %zd (%zu bytes)\n", tdi->tdi_id,
		 scope, rc < 0 ? rc : 0, r->out_len);
	kvfree(r->in);
	kvfree(r->out);
	kfree(r);
	return rc;
}

/* clang-format off */
static struct pci_tsm_ops kb_ops = {
	.link_ops = {
		.probe = kb_probe,
		.remove = kb_remove,
		.connect = kb_connect,
		.disconnect = kb_disconnect,
		.bind = kb_bind,
		.unbind = kb_unbind,
		.guest_req = kb_guest_req,
	},
};
/* clang-format on */

/* ---- misc device ---- */

static int kb_dev_open(struct inode *inode, struct file *file)
{
	int rc = 0;

	mutex_lock(&kb_lock);
	if (kb_open)
		rc = -EBUSY;
	else
		kb_open = true;
	mutex_unlock(&kb_lock);
	return rc;
}

static int kb_dev_release(struct inode *inode, struct file *file)
{
	struct vtsm_kb_req *r;

	/* Fail what the daemon leaves unanswered. */
	mutex_lock(&kb_lock);
	kb_open = false;
	list_for_each_entry(r, &kb_reqs, node) {
		r->status = -EPIPE;
		complete(&r->done);
	}
	mutex_unlock(&kb_lock);
	return 0;
}

static struct vtsm_kb_req *kb_next_undelivered(void)
{
	struct vtsm_kb_req *r;

	lockdep_assert_held(&kb_lock);
	list_for_each_entry(r, &kb_reqs, node)
		if (!r->delivered && !completion_done(&r->done))
			return r;
	return NULL;
}

static bool kb_have_event(void)
{
	bool have;

	mutex_lock(&kb_lock);
	have = kb_next_undelivered() != NULL;
	mutex_unlock(&kb_lock);
	return have;
}

static ssize_t kb_dev_read(struct file *file, char __user *buf, size_t len, loff_t *off)
{
	struct vtsm_kb_event ev;
	struct vtsm_kb_req *r;
	int rc;

	if (len < sizeof(ev))
		return -EINVAL;
	for (;;) {
		mutex_lock(&kb_lock);
		r = kb_next_undelivered();
		if (r) {
			r->delivered = true;
			ev = r->ev;
		}
		mutex_unlock(&kb_lock);
		if (r)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		rc = wait_event_interruptible(kb_readq, kb_have_event());
		if (rc)
			return rc;
	}
	if (copy_to_user(buf, &ev, sizeof(ev)))
		return -EFAULT;
	return sizeof(ev);
}

static __poll_t kb_dev_poll(struct file *file, poll_table *wait)
{
	poll_wait(file, &kb_readq, wait);
	return kb_have_event() ? EPOLLIN | EPOLLRDNORM : 0;
}

static long kb_ioc_doe(void __user *arg)
{
	struct vtsm_kb_doe d;
	struct vtsm_kb_req *r;
	void *req = NULL, *rsp = NULL;
	long rc;

	if (copy_from_user(&d, arg, sizeof(d)))
		return -EFAULT;
	if (d.reserved || d.type > 2 || !d.req_len || d.req_len > VTSM_KB_DOE_MAX || d.rsp_cap < 4)
		return -EINVAL;
	if (d.rsp_cap > VTSM_KB_DOE_MAX)
		d.rsp_cap = VTSM_KB_DOE_MAX;
	req = memdup_user(u64_to_user_ptr(d.req), d.req_len);
	if (IS_ERR(req))
		return PTR_ERR(req);
	rsp = kzalloc(d.rsp_cap, GFP_KERNEL);
	if (!rsp) {
		rc = -ENOMEM;
		goto out;
	}

	/*
	 * Only the device of a pending operation, while it is pending: its
	 * context (pdev->tsm) lives until the operation returns, which waits for
	 * kb_lock after a DONE or a timeout.
	 */
	mutex_lock(&kb_lock);
	r = kb_find(d.id);
	if (!r || completion_done(&r->done)) {
		mutex_unlock(&kb_lock);
		rc = -ENOENT;
		goto out;
	}
	rc = pci_tsm_doe_transfer(r->pdev, d.type, req, d.req_len, rsp, d.rsp_cap);
	mutex_unlock(&kb_lock);
	if (rc < 0)
		goto out;
	d.rsp_len = rc;
	rc = 0;
	if (copy_to_user(u64_to_user_ptr(d.rsp), rsp, d.rsp_len) ||
	    copy_to_user(arg, &d, sizeof(d)))
		rc = -EFAULT;
out:
	kfree(rsp);
	if (!IS_ERR(req))
		kfree(req);
	return rc;
}

static long kb_ioc_done(void __user *arg)
{
	struct vtsm_kb_done d;
	struct vtsm_kb_req *r;
	int rc = 0;

	if (copy_from_user(&d, arg, sizeof(d)))
		return -EFAULT;
	if (d.status > 0 || d.status < -MAX_ERRNO)
		return -EINVAL;
	mutex_lock(&kb_lock);
	r = kb_find(d.id);
	if (!r || !r->delivered || completion_done(&r->done)) {
		rc = -ENOENT;
	} else {
		r->status = d.status;
		complete(&r->done);
	}
	mutex_unlock(&kb_lock);
	return rc;
}

static long kb_ioc_guest(void __user *arg, bool in)
{
	struct vtsm_kb_guest g;
	struct vtsm_kb_req *r;
	long rc = 0;

	if (copy_from_user(&g, arg, sizeof(g)))
		return -EFAULT;
	mutex_lock(&kb_lock);
	r = kb_find(g.id);
	if (!r || !r->delivered || completion_done(&r->done) || r->ev.op != VTSM_KB_OP_GUEST_REQ) {
		rc = -ENOENT;
	} else if (in) {
		g.len = min_t(u32, g.len, r->ev.in_len);
		if (copy_to_user(u64_to_user_ptr(g.buf), r->in, g.len) ||
		    copy_to_user(arg, &g, sizeof(g)))
			rc = -EFAULT;
	} else if (g.len > r->ev.out_cap) {
		rc = -EMSGSIZE;
	} else if (copy_from_user(r->out, u64_to_user_ptr(g.buf), g.len)) {
		rc = -EFAULT;
	} else {
		r->out_len = g.len;
		r->tsm_code = g.tsm_code;
	}
	mutex_unlock(&kb_lock);
	return rc;
}

/* A stand-in for the VMM's struct kvm: the core only compares the pointer. */
static u8 kb_test_vm_cookie;

/*
 * Test hook (test_hooks=1): "DEV TDI" written to test_bind calls pci_tsm_bind(),
 * "DEV" written to test_unbind calls pci_tsm_unbind(), as a VMM does when it assigns
 * the function to a confidential VM and takes it back.
 */
static ssize_t kb_test_bind(const char *buf, bool bind)
{
	char name[VTSM_KB_DEV_NAME_MAX];
	struct pci_dev *pdev;
	struct device *dev;
	u32 tdi_id = 0;
	int rc;

	if (!test_hooks)
		return -EPERM;
	rc = bind ? sscanf(buf, "%31s %u", name, &tdi_id) : sscanf(buf, "%31s", name);
	if (rc != (bind ? 2 : 1))
		return -EINVAL;
	dev = bus_find_device_by_name(&pci_bus_type, NULL, name);
	if (!dev)
		return -ENODEV;
	pdev = to_pci_dev(dev);
	if (bind) {
		rc = pci_tsm_bind(pdev, (struct kvm *)&kb_test_vm_cookie, tdi_id);
	} else {
		pci_tsm_unbind(pdev);
		rc = 0;
	}
	put_device(dev);
	return rc;
}

static ssize_t test_bind_store(struct device *d, struct device_attribute *a, const char *buf,
			       size_t len)
{
	ssize_t rc = kb_test_bind(buf, true);

	return rc ? rc : len;
}
static DEVICE_ATTR_WO(test_bind);

static ssize_t test_unbind_store(struct device *d, struct device_attribute *a, const char *buf,
				 size_t len)
{
	ssize_t rc = kb_test_bind(buf, false);

	return rc ? rc : len;
}
static DEVICE_ATTR_WO(test_unbind);

static struct attribute *kb_attrs[] = {
	&dev_attr_test_bind.attr,
	&dev_attr_test_unbind.attr,
	NULL,
};
ATTRIBUTE_GROUPS(kb);

static long kb_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *p = (void __user *)arg;

	switch (cmd) {
	case VTSM_KB_IOC_DOE:
		return kb_ioc_doe(p);
	case VTSM_KB_IOC_DONE:
		return kb_ioc_done(p);
	case VTSM_KB_IOC_GUEST_IN:
		return kb_ioc_guest(p, true);
	case VTSM_KB_IOC_GUEST_OUT:
		return kb_ioc_guest(p, false);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations kb_fops = {
	.owner = THIS_MODULE,
	.open = kb_dev_open,
	.release = kb_dev_release,
	.read = kb_dev_read,
	.poll = kb_dev_poll,
	.unlocked_ioctl = kb_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice kb_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "vtsm_bridge",
	.fops = &kb_fops,
	.mode = 0600,
	.groups = kb_groups,
};

/*
 * Test hook: /dev/vtsm_bridge_test (test_hooks=1) takes VTSM_KB_IOC_TEST_GUEST_REQ
 * and calls pci_tsm_guest_req() with the caller's buffers, as a VMM's handler for a
 * TVM's request does.
 */
static long kb_test_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *p = (void __user *)arg;
	struct vtsm_kb_test_guest_req t;
	struct pci_dev *pdev;
	struct device *dev;
	u64 code = 0;
	ssize_t rc;

	if (cmd != VTSM_KB_IOC_TEST_GUEST_REQ)
		return -ENOTTY;
	if (copy_from_user(&t, p, sizeof(t)))
		return -EFAULT;
	t.dev[sizeof(t.dev) - 1] = 0;
	dev = bus_find_device_by_name(&pci_bus_type, NULL, t.dev);
	if (!dev)
		return -ENODEV;
	pdev = to_pci_dev(dev);
	rc = pci_tsm_guest_req(pdev, t.scope, USER_SOCKPTR(u64_to_user_ptr(t.in)), t.in_len,
			       USER_SOCKPTR(u64_to_user_ptr(t.out)), t.out_cap, &code);
	put_device(dev);
	if (rc < 0)
		return rc;
	if (rc > t.out_cap)
		return -EPROTO;
	t.out_len = t.out_cap - rc;
	t.tsm_code = code;
	return copy_to_user(p, &t, sizeof(t)) ? -EFAULT : 0;
}

static const struct file_operations kb_test_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = kb_test_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice kb_test_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "vtsm_bridge_test",
	.fops = &kb_test_fops,
	.mode = 0600,
};

/* ---- TEE-IO bit emulation ---- */

static void kb_emulate_tee(void)
{
	char *list, *cur, *name;
	int n = 0;

	if (!emulate_tee || !*emulate_tee)
		return;
	list = kstrdup(emulate_tee, GFP_KERNEL);
	if (!list)
		return;
	cur = list;
	while ((name = strsep(&cur, ",")) != NULL && n < KB_MAX_EMULATED) {
		struct device *dev;
		struct pci_dev *pdev;

		if (!*name)
			continue;
		dev = bus_find_device_by_name(&pci_bus_type, NULL, name);
		if (!dev) {
			pr_warn("vtsm_bridge: emulate_tee: no PCI function %s\n", name);
			continue;
		}
		pdev = to_pci_dev(dev);
		if (!pci_is_pcie(pdev) || (pdev->devcap & PCI_EXP_DEVCAP_TEE)) {
			put_device(dev);
			continue;
		}
		pdev->devcap |= PCI_EXP_DEVCAP_TEE;
		kb_emulated[n++] = pdev; /* keeps the reference */
		pci_info(pdev, "vtsm: TEE-IO bit emulated in the kernel's view\n");
	}
	kfree(list);
}

static void kb_unemulate_tee(void)
{
	int i;

	for (i = 0; i < KB_MAX_EMULATED; i++) {
		if (!kb_emulated[i])
			continue;
		kb_emulated[i]->devcap &= ~PCI_EXP_DEVCAP_TEE;
		put_device(&kb_emulated[i]->dev);
		kb_emulated[i] = NULL;
	}
}

static int __init kb_init(void)
{
	int rc;

	rc = misc_register(&kb_misc);
	if (rc)
		return rc;
	if (test_hooks) {
		rc = misc_register(&kb_test_misc);
		if (rc) {
			misc_deregister(&kb_misc);
			return rc;
		}
	}
	kb_emulate_tee();
	kb_tsm = tsm_register(kb_misc.this_device, &kb_ops);
	if (IS_ERR(kb_tsm)) {
		rc = PTR_ERR(kb_tsm);
		kb_unemulate_tee();
		if (test_hooks)
			misc_deregister(&kb_test_misc);
		misc_deregister(&kb_misc);
		return rc;
	}
	pr_info("vtsm_bridge: registered %s\n", dev_name(&kb_tsm->dev));
	return 0;
}

static void __exit kb_exit(void)
{
	/* Disconnects every connected device (through the daemon, if any). */
	tsm_unregister(kb_tsm);
	kb_unemulate_tee();
	if (test_hooks)
		misc_deregister(&kb_test_misc);
	misc_deregister(&kb_misc);
	pr_info("vtsm_bridge: unregistered\n");
}

module_init(kb_init);
module_exit(kb_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("vtsm: PCI TSM link operations forwarded to a user-space TSM");
