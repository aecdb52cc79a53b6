/* Deterministic workload for the bpfkit trace oracle tests: N rounds of
 * open/read/close/getppid/write on known files, then a few named functions that
 * uprobes hook.  Strings are copied to the stack before exec-time reads (see
 * bpftrace-oracle.md). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
        acc += bk_add(i, 1) + bk_square(i);
        write(-1, buf, i * 10);
        acc += strlen(bk_name(i));
    }
    printf("acc %ld\n", acc);
    return 0;
}
