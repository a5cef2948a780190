/* floor.c - the cheapest possible DNS responder, as the benchmark's floor: recvmmsg a batch,
 * turn each query into a header-only NOERROR answer in place, sendmmsg the batch back. No
 * parsing, no policy. Usage: floor ADDR PORT */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 64

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: floor ADDR PORT\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("bind");
        return 1;
    }
    static unsigned char buf[BATCH][512];
    struct sockaddr_in peers[BATCH];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){buf[i], sizeof buf[i]};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &peers[i],
                                              .msg_namelen = sizeof peers[i],
                                              .msg_iov = &iov[i],
                                              .msg_iovlen = 1};
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0) continue;
        for (int i = 0; i < n; i++) {
            buf[i][2] |= 0x80; /* QR */
            buf[i][3] = 0x80;  /* RA, NOERROR */
            iov[i].iov_len = msgs[i].msg_len;
        }
        sendmmsg(fd, msgs, (unsigned)n, 0);
    }
}
