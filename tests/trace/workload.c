/* Deterministic workload for the bpfkit trace oracle tests: N rounds of
 * open/read/close/getppid/write on known files, then a few named functions that
 * uprobes hook.  Strings are copied to the stack before exec-time reads (see
 * bpftrace-oracle.md). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>
#else
#define DTRACE_PROBE2(p, n, a, b) do { } while (0)
#define DTRACE_PROBE1(p, n, a) do { } while (0)
#endif

/* `tcp PORT`: one loopback connection to PORT, accepted and closed. */
static void tcp_once(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int one = 1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1))
        exit(2);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof(a)))
        exit(3);
    int s = accept(l, NULL, NULL);
    close(c);
    usleep(20000);
    close(s);
    close(l);
    usleep(20000);
}

/* `spin MS`: burn CPU in bk_spin for MS milliseconds (profile probes). */
__attribute__((noipa)) long bk_spin(long ms)
{
    struct timespec t0, t;
    long x = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        for (int i = 0; i < 100000; i++)
            x += i ^ x;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
    return x;
}

__attribute__((noipa)) int bk_add(int a, int b) { return a + b; }
__attribute__((noipa)) long bk_square(long x) { return x * x; }
__attribute__((noipa)) const char *bk_name(int i) { return i % 2 ? "odd" : "even"; }

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10;
    char path[64], buf[4096];
    long acc = 0;
    for (int i = 0; i < n; i++) {
        strcpy(path, "/etc/hostname");
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            read(fd, buf, (i % 4 + 1) * 100);
            close(fd);
        }
        strcpy(path, "/nonexistent/bk_missing");
        fd = open(path, O_RDONLY);
        getppid();
        DTRACE_PROBE2(bkwl, round, i, (long)i * 3);
        DTRACE_PROBE1(bkwl, path, path);
        acc += bk_add(i, 1) + bk_square(i);
        write(-1, buf, i * 10);
        acc += strlen(bk_name(i));
    }
    if (argc > 3 && !strcmp(argv[2], "tcp"))
        tcp_once(atoi(argv[3]));
    if (argc > 3 && !strcmp(argv[2], "spin")) {
        struct timespec cpu;
        acc += bk_spin(atol(argv[3])) & 0;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
        printf("cpu_ms %ld\n", cpu.tv_sec * 1000 + cpu.tv_nsec / 1000000);
    }
    printf("acc %ld\n", acc);
    return 0;
}
