// SPDX-License-Identifier: GPL-2.0
/*
 * The socket ioctls: QD_IOC_SOCKET (sock.c makes the socket), QD_IOC_BIND,
 * QD_IOC_LISTEN, QD_IOC_GETNAME, QD_IOC_SETSOCKOPT and QD_IOC_GETSOCKOPT.
 * None waits for the network, so they are control calls, not operations
 * (Documentation/design.md, Sockets). Each runs in the caller's process
 * context with its current credentials: bind's capability check
 * (CAP_NET_BIND_SERVICE) is the stack's own, made for the caller.
 */
#include <linux/net.h>
#include <linux/uaccess.h>
#include <net/ipv6.h>
#include <net/net_namespace.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "ctx.h"
#include "sock.h"

static bool qd_resv_zero(const u32 *resv, int n)
{
	while (n--)
		if (resv[n])
			return false;
	return true;
}

static int qd_sock_bind(struct qd_ctx *ctx, struct qd_sock_name __user *arg)
{
	struct sockaddr_storage ss;
	struct qd_sock_name n;
	struct qd_sock *s;
	int ret;

	if (copy_from_user(&n, arg, sizeof(n)))
		return -EFAULT;
	if (n.flags || !qd_resv_zero(n.resv, ARRAY_SIZE(n.resv)) ||
	    n.addr_len < sizeof(sa_family_t) || n.addr_len > sizeof(ss))
		return -EINVAL;
	if (copy_from_user(&ss, u64_to_user_ptr(n.addr), n.addr_len))
		return -EFAULT;
	s = qd_sock_get(ctx, n.qd);
	if (IS_ERR(s))
		return PTR_ERR(s);
	/* bind(2)'s own checks run with our credentials (inet_bind()). */
	if (ss.ss_family != s->family)
		ret = -EAFNOSUPPORT;
	else
		ret = kernel_bind(s->sock, (struct sockaddr *)&ss, n.addr_len);
	qd_object_put(&s->obj);
	return ret;
}

static int qd_sock_getname(struct qd_ctx *ctx, struct qd_sock_name __user *arg)
{
	struct sockaddr_storage ss;
	struct qd_sock_name n;
	struct qd_sock *s;
	int len;

	if (copy_from_user(&n, arg, sizeof(n)))
		return -EFAULT;
	if (n.flags & ~QD_NAME_PEER || !qd_resv_zero(n.resv, ARRAY_SIZE(n.resv)))
		return -EINVAL;
	s = qd_sock_get(ctx, n.qd);
	if (IS_ERR(s))
		return PTR_ERR(s);
	memset(&ss, 0, sizeof(ss));
	if (n.flags & QD_NAME_PEER)
		len = kernel_getpeername(s->sock, (struct sockaddr *)&ss);
	else
		len = kernel_getsockname(s->sock, (struct sockaddr *)&ss);
	qd_object_put(&s->obj);
	if (len < 0)
		return len;
	if (copy_to_user(u64_to_user_ptr(n.addr), &ss, min_t(u32, len, n.addr_len)))
		return -EFAULT;
	return put_user(len, &arg->addr_len);
}

static int qd_sock_listen(struct qd_ctx *ctx, struct qd_sock_listen __user *arg)
{
	struct qd_sock_listen l;
	struct qd_sock *s;
	u32 somaxconn;
	int ret;

	if (copy_from_user(&l, arg, sizeof(l)))
		return -EFAULT;
	if (!qd_resv_zero(l.resv, ARRAY_SIZE(l.resv)))
		return -EINVAL;
	s = qd_sock_get(ctx, l.qd);
	if (IS_ERR(s))
		return PTR_ERR(s);
	somaxconn = READ_ONCE(sock_net(s->sock->sk)->core.sysctl_somaxconn);
	if ((u32)l.backlog > somaxconn)
		l.backlog = somaxconn;
	ret = kernel_listen(s->sock, l.backlog);
	qd_object_put(&s->obj);
	return ret;
}

/* The options qd lets through: nothing that assumes a socket file. */
static bool qd_sockopt_ok(int level, int name, bool get)
{
	switch (level) {
	case SOL_SOCKET:
		return name == SO_REUSEADDR || name == SO_REUSEPORT ||
		       name == SO_RCVBUF || name == SO_SNDBUF ||
		       name == SO_KEEPALIVE || name == SO_BROADCAST ||
		       (get && (name == SO_ERROR || name == SO_TYPE));
	case IPPROTO_TCP:
		return name == TCP_NODELAY || name == TCP_KEEPIDLE ||
		       name == TCP_KEEPINTVL || name == TCP_KEEPCNT ||
		       name == TCP_MAXSEG;
	case IPPROTO_IP:
		return name == IP_TOS || name == IP_TTL;
	case IPPROTO_IPV6:
		return name == IPV6_V6ONLY || name == IPV6_UNICAST_HOPS;
	default:
		return false;
	}
}

/* SOL_SOCKET reads: sock_getsockopt() is not exported. */
static int qd_sock_getsol(struct sock *sk, int name, int *val)
{
	switch (name) {
	case SO_REUSEADDR:
		*val = sk->sk_reuse;
		break;
	case SO_REUSEPORT:
		*val = sk->sk_reuseport;
		break;
	case SO_RCVBUF:
		*val = READ_ONCE(sk->sk_rcvbuf);
		break;
	case SO_SNDBUF:
		*val = READ_ONCE(sk->sk_sndbuf);
		break;
	case SO_KEEPALIVE:
		*val = sock_flag(sk, SOCK_KEEPOPEN);
		break;
	case SO_BROADCAST:
		*val = sock_flag(sk, SOCK_BROADCAST);
		break;
	case SO_ERROR:
		*val = -sock_error(sk);
		break;
	default:	/* SO_TYPE */
		*val = sk->sk_type;
		break;
	}
	return 0;
}

static int qd_sock_sockopt(struct qd_ctx *ctx, struct qd_sockopt __user *arg,
			   bool get)
{
	struct qd_sockopt o;
	struct qd_sock *s;
	struct socket *sock;
	int ret, val;

	if (copy_from_user(&o, arg, sizeof(o)))
		return -EFAULT;
	if (!qd_resv_zero(o.resv, ARRAY_SIZE(o.resv)) || o.optlen > INT_MAX)
		return -EINVAL;
	if (!qd_sockopt_ok(o.level, o.optname, get))
		return -ENOPROTOOPT;
	s = qd_sock_get(ctx, o.qd);
	if (IS_ERR(s))
		return PTR_ERR(s);
	sock = s->sock;
	if (!get && o.level == SOL_SOCKET)
		ret = sock_setsockopt(sock, o.level, o.optname,
				      USER_SOCKPTR(u64_to_user_ptr(o.optval)),
				      o.optlen);
	else if (!get)
		ret = sock->ops->setsockopt(sock, o.level, o.optname,
					    USER_SOCKPTR(u64_to_user_ptr(o.optval)),
					    o.optlen);
	else if (o.level != SOL_SOCKET)
		ret = sock->ops->getsockopt(sock, o.level, o.optname,
					    u64_to_user_ptr(o.optval),
					    (int __user *)&arg->optlen);
	else if (o.optlen < sizeof(int))
		ret = -EINVAL;
	else if (!qd_sock_getsol(sock->sk, o.optname, &val) &&
		 (copy_to_user(u64_to_user_ptr(o.optval), &val, sizeof(val)) ||
		  put_user((u32)sizeof(val), &arg->optlen)))
		ret = -EFAULT;
	else
		ret = 0;
	qd_object_put(&s->obj);
	return ret;
}

int qd_sock_ioctl(struct qd_ctx *ctx, unsigned int cmd, void __user *arg)
{
	switch (cmd) {
	case QD_IOC_SOCKET:
		return qd_sock_create(ctx, arg);
	case QD_IOC_BIND:
		return qd_sock_bind(ctx, arg);
	case QD_IOC_LISTEN:
		return qd_sock_listen(ctx, arg);
	case QD_IOC_GETNAME:
		return qd_sock_getname(ctx, arg);
	case QD_IOC_SETSOCKOPT:
		return qd_sock_sockopt(ctx, arg, false);
	default:
		return qd_sock_sockopt(ctx, arg, true);
	}
}
