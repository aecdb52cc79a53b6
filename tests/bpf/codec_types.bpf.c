// Types for the BTF codec tests (tests/test_btf_codec.py): bitfields, anonymous
// unions, enums, char arrays, arrays of structs.  Never loaded, only its BTF is read.
#include <linux/types.h>
#include <stdbool.h>

enum color { RED = 0, GREEN = 1, BLUE = 7, NEG = -3 };
enum big : unsigned long long { BIG_A = 1, BIG_B = 0xffffffff00000000ULL };

struct event {
	__u32 pid;
	__u32 ppid;
	char comm[16];
	__u64 ts;
};

struct point { __s16 x; __s16 y; };

struct flags {
	unsigned int a : 3;
	int b : 5;
	unsigned int c : 1;
	enum color col : 4;
	bool on : 1;
	__u64 wide : 40;
	unsigned char tail;
};

struct inner { __u8 kind; char tag[5]; };

struct mixed {
	__u64 id;
	union {
		__u32 as_u32;
		__u8 bytes[4];
		struct { __u16 lo; __u16 hi; };
	};
	enum color color;
	struct point pts[3];
	struct inner in;
	int nums[4];
	void *ptr;
	double ratio;
	float f;
	signed char sc;
	bool ok;
	enum big big;
	__int128 huge;
	unsigned __int128 uhuge;
	struct point many[100];
	union { __u64 q; struct { __u32 w0; __u32 w1 : 12; __u32 w2 : 20; }; } packed_u;
	char name[0];
};

struct __attribute__((packed)) pkt { __u8 t; __u32 len; __u16 port; };

struct event e0;
struct flags f0;
struct mixed m0;
struct pkt p0;
enum big b0;
