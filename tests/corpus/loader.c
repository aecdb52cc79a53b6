// The reference loader of the compatibility corpus: libbpf (the system's libbpf-dev)
// opens and loads one BPF object and prints, as one JSON line, the verdict and for every
// loaded program its name, program type, expected attach type and the kernel's xlated
// instruction count, and for every map what the kernel holds (bpf_map_info).  Built at test/bench time with the system compiler:
//     cc -O2 -o corpus-loader loader.c -lbpf
// Usage: corpus-loader [-v] [-x PROG]... [-n N] OBJ
//   -x PROG  do not autoload PROG (fentry programs with fallbacks chosen by autoload)
//   -n N     open+load+close N times and print the wall time of each (for bench/load.py)
//   -v       let libbpf print its warnings (stderr)
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static int verbose;
static char last_warning[1024];

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && !last_warning[0]) {
		va_list aq;
		va_copy(aq, ap);
		vsnprintf(last_warning, sizeof(last_warning), fmt, aq);
		va_end(aq);
	}
	if (verbose && level <= LIBBPF_WARN)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* open + load; returns the object (loaded or not) and the load error (negative errno) */
static struct bpf_object *open_load(const char *path, char **skip, int nskip, int *err)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct bpf_program *prog;
	int i;

	if (!obj) {
		*err = -errno;
		return NULL;
	}
	bpf_object__for_each_program(prog, obj) {
		for (i = 0; i < nskip; i++)
			if (strcmp(bpf_program__name(prog), skip[i]) == 0)
				bpf_program__set_autoload(prog, false);
	}
	*err = bpf_object__load(obj);
	return obj;
}

int main(int argc, char **argv)
{
	char *skip[64];
	int nskip = 0, n = 0, opt, err, i;
	struct bpf_object *obj;
	struct bpf_program *prog;

	while ((opt = getopt(argc, argv, "vx:n:")) != -1) {
		if (opt == 'v')
			verbose = 1;
		else if (opt == 'x' && nskip < 64)
			skip[nskip++] = optarg;
		else if (opt == 'n')
			n = atoi(optarg);
		else
			return 2;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: %s [-v] [-x PROG]... [-n N] OBJ\n", argv[0]);
		return 2;
	}
	libbpf_set_print(print_fn);
	if (n > 0) {
		printf("{\"times\": [");
		for (i = 0; i < n; i++) {
			double t0 = now();
			obj = open_load(argv[optind], skip, nskip, &err);
			bpf_object__close(obj);
			printf("%s%.9f", i ? ", " : "", now() - t0);
			if (err)
				break;
		}
		printf("], \"err\": %d}\n", err);
		return 0;
	}
	obj = open_load(argv[optind], skip, nskip, &err);
	printf("{\"object\": ");
	json_str(argv[optind]);
	printf(", \"err\": %d, \"warning\": ", err);
	json_str(err ? last_warning : "");
	printf(", \"programs\": [");
	i = 0;
	if (obj) {
		bpf_object__for_each_program(prog, obj) {
			struct bpf_prog_info info;
			__u32 len = sizeof(info);
			int fd = bpf_program__fd(prog);
			long xlated = -1;

			if (!bpf_program__autoload(prog))
				continue;
			memset(&info, 0, sizeof(info));
			if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
				xlated = info.xlated_prog_len / 8;
			printf("%s{\"name\": ", i++ ? ", " : "");
			json_str(bpf_program__name(prog));
			printf(", \"section\": ");
			json_str(bpf_program__section_name(prog));
			printf(", \"type\": %d, \"expected_attach_type\": %d, \"xlated\": %ld}",
			       bpf_program__type(prog), bpf_program__expected_attach_type(prog),
			       xlated);
		}
	}
	printf("], \"maps\": [");
	i = 0;
	if (obj && !err) {
		struct bpf_map *map;

		bpf_object__for_each_map(map, obj) {
			struct bpf_map_info info;
			__u32 len = sizeof(info);
			int fd = bpf_map__fd(map);

			memset(&info, 0, sizeof(info));
			if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
				continue;
			printf("%s{\"name\": ", i++ ? ", " : "");
			json_str(info.name);
			printf(", \"type\": %u, \"key_size\": %u, \"value_size\": %u, "
			       "\"max_entries\": %u, \"flags\": %u, \"btf_key_type_id\": %u, "
			       "\"btf_value_type_id\": %u, \"map_extra\": %llu}",
			       info.type, info.key_size, info.value_size, info.max_entries,
			       info.map_flags, info.btf_key_type_id, info.btf_value_type_id,
			       (unsigned long long)info.map_extra);
		}
	}
	printf("]}\n");
	bpf_object__close(obj);
	return 0;
}
