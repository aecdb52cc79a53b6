// ebpf_exporter's maps.bpf.h / bits.bpf.h helpers, in our own words.
#ifndef EE_MAPS_H
#define EE_MAPS_H

#define EE_EEXIST 17

static __always_inline void *lookup_or_try_init(void *map, const void *key, const void *init)
{
	void *val = bpf_map_lookup_elem(map, key);

	if (val)
		return val;
	if (bpf_map_update_elem(map, key, init, BPF_NOEXIST) && 0)
		return 0;
	return bpf_map_lookup_elem(map, key);
}

static __always_inline void increment_map(void *map, void *key, __u64 increment)
{
	__u64 zero = 0, *count = lookup_or_try_init(map, key, &zero);

	if (!count)
		return;
	__sync_fetch_and_add(count, increment);
}

static __always_inline __u64 log2(__u32 v)
{
	__u32 shift, r;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u64 log2l(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? log2(hi) + 32 : log2(v);
}

#define increment_exp2_histogram(map, key, value, max_bucket)                    \
	do {                                                                     \
		__u64 __bucket = log2l(value);                                   \
		if (__bucket > max_bucket)                                       \
			__bucket = max_bucket;                                   \
		(key)->bucket = __bucket;                                        \
		increment_map(map, key, 1);                                      \
		(key)->bucket = max_bucket + 1;                                  \
		increment_map(map, key, value);                                  \
	} while (0)

#endif
