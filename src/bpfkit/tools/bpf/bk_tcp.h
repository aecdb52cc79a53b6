/* Shared by tcplife and tcpretrans: the sock:inet_sock_set_state and
 * tcp:tcp_retransmit_skb tracepoint records (addresses already split by family), the TCP
 * states and the tcp_sock byte counters (CO-RE, "___bk" flavour). */
#ifndef BPFKIT_BK_TCP_H
#define BPFKIT_BK_TCP_H
#include "bk_events.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

enum {
    TCP_ESTABLISHED = 1, TCP_SYN_SENT, TCP_SYN_RECV, TCP_FIN_WAIT1, TCP_FIN_WAIT2,
    TCP_TIME_WAIT, TCP_CLOSE, TCP_CLOSE_WAIT, TCP_LAST_ACK, TCP_LISTEN, TCP_CLOSING,
    TCP_NEW_SYN_RECV,
};

struct tp_inet_sock_set_state {
    __u64 common;
    const void *skaddr;
    __s32 oldstate;
    __s32 newstate;
    __u16 sport;
    __u16 dport;
    __u16 family;
    __u16 protocol;
    __u8 saddr[4];
    __u8 daddr[4];
    __u8 saddr_v6[16];
    __u8 daddr_v6[16];
};

struct tp_tcp_retransmit_skb {
    __u64 common;
    const void *skbaddr;
    const void *skaddr;
    __s32 state;
    __u16 sport;
    __u16 dport;
    __u16 family;
    __u8 saddr[4];
    __u8 daddr[4];
    __u8 saddr_v6[16];
    __u8 daddr_v6[16];
    __s32 err;
};

struct tcp_sock___bk {
    __u64 bytes_received;
    __u64 bytes_acked;
} __attribute__((preserve_access_index));

/* -4 / -6: only this address family (0 = both) */
const volatile __u16 targ_family = 0;

/* copy the addresses of a tracepoint record (IPv4 in the first 4 bytes) */
#define COPY_ADDRS(e, ctx)                                                     \
    do {                                                                       \
        if ((ctx)->family == AF_INET) {                                        \
            __builtin_memcpy((e)->saddr, (ctx)->saddr, 4);                     \
            __builtin_memcpy((e)->daddr, (ctx)->daddr, 4);                     \
        } else {                                                               \
            __builtin_memcpy((e)->saddr, (ctx)->saddr_v6, 16);                 \
            __builtin_memcpy((e)->daddr, (ctx)->daddr_v6, 16);                 \
        }                                                                      \
    } while (0)

#endif
