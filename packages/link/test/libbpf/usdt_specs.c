// SPDX-License-Identifier: GPL-2.0
// The libbpf side of the USDT comparison: loads OBJECT with the system's libbpf, attaches its
// program PROG to each BINARY:PROVIDER:NAME:COOKIE with bpf_program__attach_usdt, and prints
// every non-zero entry of __bpf_usdt_specs as "ID HEX" (what libbpf wrote there), then
// detaches. Built by the test, never shipped.
//
//   usdt_specs OBJECT PROG BINARY:PROVIDER:NAME:COOKIE...
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	struct bpf_link *links[16] = {};
	struct bpf_program *prog;
	struct bpf_object *obj;
	struct bpf_map *specs;
	unsigned char value[4096];
	int n = 0, err;

	if (argc < 4 || argc - 3 > 16) {
		fprintf(stderr, "usage: %s OBJECT PROG BINARY:PROVIDER:NAME:COOKIE...\n", argv[0]);
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "load %s failed\n", argv[1]);
		return 1;
	}
	prog = bpf_object__find_program_by_name(obj, argv[2]);
	specs = bpf_object__find_map_by_name(obj, "__bpf_usdt_specs");
	if (!prog || !specs) {
		fprintf(stderr, "no program %s or no __bpf_usdt_specs\n", argv[2]);
		return 1;
	}
	for (int i = 3; i < argc; i++) {
		char *binary = strtok(argv[i], ":"), *provider = strtok(NULL, ":"), *name = strtok(NULL, ":");
		char *cookie = strtok(NULL, ":");
		LIBBPF_OPTS(bpf_usdt_opts, opts, .usdt_cookie = strtoull(cookie ? cookie : "0", NULL, 0));

		links[n] = bpf_program__attach_usdt(prog, -1, binary, provider, name, &opts);
		err = libbpf_get_error(links[n]);
		if (err) {
			fprintf(stderr, "attach %s:%s failed: %d\n", provider, name, err);
			return 1;
		}
		n++;
	}
	for (__u32 id = 0; id < bpf_map__max_entries(specs); id++) {
		__u32 size = bpf_map__value_size(specs), nonzero = 0;

		if (size > sizeof(value) || bpf_map_lookup_elem(bpf_map__fd(specs), &id, value))
			return 1;
		for (__u32 j = 0; j < size; j++)
			nonzero |= value[j];
		if (!nonzero)
			continue;
		printf("%u ", id);
		for (__u32 j = 0; j < size; j++)
			printf("%02x", value[j]);
		printf("\n");
	}
	while (n--)
		bpf_link__destroy(links[n]);
	bpf_object__close(obj);
	return 0;
}
