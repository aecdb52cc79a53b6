// Outgoing TCP connection attempts by destination address and port, and TCP state
// changes by new state (the enum's names come from this object's BTF).
#include "common.h"

enum tcp_state {
    TCP_ESTABLISHED = 1, TCP_SYN_SENT, TCP_SYN_RECV, TCP_FIN_WAIT1, TCP_FIN_WAIT2,
    TCP_TIME_WAIT, TCP_CLOSE, TCP_CLOSE_WAIT, TCP_LAST_ACK, TCP_LISTEN, TCP_CLOSING,
    TCP_NEW_SYN_RECV, TCP_BOUND_INACTIVE,
};

struct set_state_ctx {          /* sock/inet_sock_set_state */
    __u64 common;
    const void *skaddr;
    int oldstate;
    int newstate;
    __u16 sport;
    __u16 dport;                /* host byte order */
    __u16 family;
    __u16 protocol;
    __u8 saddr[4];
    __u8 daddr[4];
    __u8 saddr_v6[16];
    __u8 daddr_v6[16];
};

struct conn_key {
    __u8 daddr[16];             /* IPv6, or IPv4-mapped IPv6 */
    __u16 dport;
    __u16 family;
};

struct state_key {
    enum tcp_state state;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, struct conn_key);
    __type(value, __u64);
} tcp_connects SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 32);
    __type(key, struct state_key);
    __type(value, __u64);
} tcp_states SEC(".maps");

SEC("tp/sock/inet_sock_set_state")
int on_set_state(struct set_state_ctx *ctx)
{
    struct state_key sk = {};
    struct conn_key k = {};
    if (ctx->protocol != 6 /* IPPROTO_TCP */)
        return 0;
    sk.state = ctx->newstate;
    add(&tcp_states, &sk, 1);
    if (ctx->newstate != TCP_SYN_SENT || !tgid_allowed())
        return 0;
    k.dport = ctx->dport;
    k.family = ctx->family;
    if (ctx->family == 2 /* AF_INET */) {
        k.daddr[10] = 0xff;
        k.daddr[11] = 0xff;
        __builtin_memcpy(&k.daddr[12], ctx->daddr, 4);
    } else {
        __builtin_memcpy(k.daddr, ctx->daddr_v6, 16);
    }
    add(&tcp_connects, &k, 1);
    return 0;
}
