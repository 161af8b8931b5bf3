/* C baseline of the SCTP socket layer benchmark (lab/bench/sctp-bench.sh): the same protocol as
 * sys/examples/sctp_bench.rs with raw syscalls and blocking sockets, no libsctp: 1 KiB messages over
 * a one-to-one association on 127.0.0.1, sendmsg with an SCTP_SNDINFO cmsg, recvmsg with
 * SCTP_RCVINFO enabled, server and client on two threads.
 * Usage: sctp_baseline [messages=10000] [round_trips=1000] [port=7100] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/sctp.h>

#define SIZE 1024
static long N = 10000, M = 1000;
static int PORT = 7100;
static int RCVBUF = 0; /* SO_RCVBUF for both ends, 0: the kernel's default */
static volatile int ready;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) { perror(what); exit(1); }

static ssize_t send_msg(int fd, const void *data, size_t len) {
    char cbuf[CMSG_SPACE(sizeof(struct sctp_sndinfo))];
    struct iovec iov = {(void *)data, len};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_SCTP;
    c->cmsg_type = SCTP_SNDINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct sctp_sndinfo));
    struct sctp_sndinfo si = {0};
    memcpy(CMSG_DATA(c), &si, sizeof(si));
    ssize_t r = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (r < 0) die("sendmsg");
    return r;
}

/* Receives one whole message (until MSG_EOR) into buf. */
static ssize_t recv_msg(int fd, char *buf, size_t cap) {
    size_t got = 0;
    for (;;) {
        char cbuf[128];
        struct iovec iov = {buf + got, cap - got};
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof(cbuf);
        ssize_t r = recvmsg(fd, &msg, 0);
        if (r <= 0) die("recvmsg");
        got += r;
        if (msg.msg_flags & MSG_EOR) return got;
    }
}

static void setup(int fd) {
    int on = 1;
    if (RCVBUF > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &RCVBUF, sizeof(RCVBUF))) die("RCVBUF");
    if (setsockopt(fd, IPPROTO_SCTP, SCTP_RECVRCVINFO, &on, sizeof(on))) die("RECVRCVINFO");
    if (setsockopt(fd, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof(on))) die("NODELAY");
}

static void *server(void *arg) {
    (void)arg;
    int l = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
    if (l < 0) die("socket");
    int on = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    setup(l);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&a, sizeof(a))) die("bind");
    if (listen(l, 4)) die("listen");
    ready = 1;
    int s = accept(l, NULL, NULL);
    if (s < 0) die("accept");
    setup(s);
    static char buf[65536];
    for (long i = 0; i < N; i++) recv_msg(s, buf, sizeof(buf));
    send_msg(s, "k", 1);
    for (long i = 0; i < M; i++) {
        ssize_t n = recv_msg(s, buf, sizeof(buf));
        send_msg(s, buf, n);
    }
    close(s);
    close(l);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc > 1) N = atol(argv[1]);
    if (argc > 2) M = atol(argv[2]);
    if (argc > 3) PORT = atoi(argv[3]);
    if (argc > 4) RCVBUF = atoi(argv[4]);
    pthread_t t;
    pthread_create(&t, NULL, server, NULL);
    while (!ready) usleep(1000);
    int s = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
    if (s < 0) die("socket");
    setup(s);
    struct sctp_initmsg im = {.sinit_num_ostreams = 4, .sinit_max_instreams = 4};
    setsockopt(s, IPPROTO_SCTP, SCTP_INITMSG, &im, sizeof(im));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof(a))) die("connect");
    static char msg[SIZE], buf[65536];
    memset(msg, 0x5a, sizeof(msg));
    double t0 = now();
    for (long i = 0; i < N; i++) send_msg(s, msg, SIZE);
    recv_msg(s, buf, sizeof(buf));
    double rate = N / (now() - t0);
    double *lat = malloc(sizeof(double) * (M > 0 ? M : 1));
    double sum = 0;
    for (long i = 0; i < M; i++) {
        double t1 = now();
        send_msg(s, msg, SIZE);
        recv_msg(s, buf, sizeof(buf));
        lat[i] = (now() - t1) * 1e6;
        sum += lat[i];
    }
    pthread_join(t, NULL);
    qsort(lat, M, sizeof(double), cmp);
    printf("rate_msgs_per_s=%.0f\n", rate);
    printf("lat_mean_us=%.1f lat_p50_us=%.1f lat_p99_us=%.1f\n", M ? sum / M : 0, M ? lat[M / 2] : 0,
           M ? lat[(long)(M * 0.99)] : 0);
    return 0;
}
