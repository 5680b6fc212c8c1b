// SPDX-License-Identifier: MIT
/*
 * A TCP echo server on socket qds: one thread, any number of connections,
 * every accept, pop and push an operation in flight, qd_wait_any() over all
 * of their tokens. A popped buffer (libqd's, owned by us) is pushed back as
 * it is and freed when that push completes.
 *
 *   cc -Ilibqd/include tcp-echo.c libqd/libqd.a -lpthread
 *   ./tcp-echo 7777 &  echo hello | nc -q1 127.0.0.1 7777
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qd.h>

#define MAX_TOKENS	1024

enum kind { ACCEPT, POP, PUSH };

static qd_token_t tokens[MAX_TOKENS];
static enum kind kinds[MAX_TOKENS];
static int ntokens;

static void add(qd_token_t qt, enum kind k)
{
	tokens[ntokens] = qt;
	kinds[ntokens++] = k;
}

static void drop(int i)
{
	tokens[i] = tokens[--ntokens];
	kinds[i] = kinds[ntokens];
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct qd_result qr;
	qd_token_t qt;
	int lq, i, ret;
	enum kind k;

	a.sin_port = htons(argc > 1 ? atoi(argv[1]) : 7777);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((ret = qd_socket(&lq, AF_INET, SOCK_STREAM, 0)) ||
	    (ret = qd_setsockopt(lq, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 },
				 sizeof(int))) ||
	    (ret = qd_bind(lq, (struct sockaddr *)&a, sizeof(a))) ||
	    (ret = qd_listen(lq, 128)) || (ret = qd_accept(&qt, lq))) {
		fprintf(stderr, "tcp-echo: %s\n", strerror(-ret));
		return 1;
	}
	add(qt, ACCEPT);
	for (;;) {
		ret = qd_wait_any(&qr, &i, tokens, ntokens, NULL);
		if (ret) {
			fprintf(stderr, "tcp-echo: wait: %s\n", strerror(-ret));
			return 1;
		}
		k = kinds[i];
		drop(i);
		if (k == ACCEPT) {
			if (qr.ret < 0)
				return 1;
			/* the next connection, and the first bytes of this one */
			if (ntokens + 3 <= MAX_TOKENS && !qd_pop(&qt, qr.value.accept.qd))
				add(qt, POP);
			if (!qd_accept(&qt, lq))
				add(qt, ACCEPT);
		} else if (k == POP) {
			if (qr.ret <= 0) {	/* the peer closed, or an error */
				qd_close(qr.qd);
				continue;
			}
			if (!qd_push(&qt, qr.qd, &qr.value.sga))
				add(qt, PUSH);
			else
				qd_sgafree(&qr.value.sga);
			if (!qd_pop(&qt, qr.qd))
				add(qt, POP);
		} else {
			/* the push is done: its buffer is ours to free */
			if (qr.ret >= 0)
				qd_sgafree(&qr.value.sga);
		}
	}
}
