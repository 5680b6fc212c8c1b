// SPDX-License-Identifier: MIT
/*
 * Ping-pong over two memory queues: the main thread pushes a buffer to
 * "ping", the echo thread pops it (and so owns it), pushes the same buffer
 * back to "pong", and the main thread pops it and frees it.
 *
 * Pushes are qd_push_forget(): nobody waits for them, the buffer travels
 * with the element, and a success posts no completion. Each thread's push
 * goes to the kernel with its next wait (the pop's), so every hop costs
 * one system call.
 *
 *   cc -Ilibqd/include memq-pingpong.c libqd/libqd.a -lpthread
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <qd.h>

#define ROUNDS	1000

static int ping, pong;

/* Pop one element from qd into *qr; 0 or -errno. */
static int pop_wait(int qd, struct qd_result *qr)
{
	qd_token_t qt;
	int ret;

	ret = qd_pop(&qt, qd);
	if (!ret)
		ret = qd_wait(qr, qt, NULL);
	return ret ? ret : (int)(qr->ret < 0 ? qr->ret : 0);
}

static void *echo(void *arg)
{
	struct qd_result qr;
	int i;

	(void)arg;
	for (i = 0; i < ROUNDS; i++) {
		if (pop_wait(ping, &qr) || qd_push_forget(pong, &qr.value.sga))
			break;
	}
	return NULL;
}

int main(void)
{
	struct qd_result qr;
	struct qd_stats st;
	struct qd_sga sga;
	char want[64];
	pthread_t t;
	int i, ret;

	ret = qd_init();
	if (!ret)
		ret = qd_queue(&ping);
	if (!ret)
		ret = qd_queue(&pong);
	if (ret) {
		fprintf(stderr, "qd: %s\n", strerror(-ret));
		return 1;
	}
	pthread_create(&t, NULL, echo, NULL);
	for (i = 0; i < ROUNDS; i++) {
		sga = qd_sgaalloc(64);
		if (!sga.numsegs) {
			perror("qd_sgaalloc");
			break;
		}
		snprintf(want, sizeof(want), "ping %d", i);
		memcpy(sga.segs[0].buf, want, sizeof(want));
		ret = qd_push_forget(ping, &sga);
		if (!ret)
			ret = pop_wait(pong, &qr);
		if (ret) {
			fprintf(stderr, "round %d: %s\n", i, strerror(-ret));
			break;
		}
		if (strcmp(qr.value.sga.segs[0].buf, want))
			fprintf(stderr, "round %d: wrong element\n", i);
		qd_sgafree(&qr.value.sga);
	}
	qd_close(ping);
	qd_close(pong);
	pthread_join(t, NULL);

	qd_stats(&st);
	printf("%d rounds, %llu syscalls, %llu enters (%llu waits)\n", i,
	       (unsigned long long)st.syscalls, (unsigned long long)st.enters,
	       (unsigned long long)st.enter_waits);
	return i == ROUNDS ? 0 : 1;
}
