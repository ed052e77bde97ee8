// SPDX-License-Identifier: GPL-2.0
// The libbpf side of the comparison tests: opens an object with the system's libbpf, adjusts
// programs the way libbpf's API lets a user, loads it, and pins every program that loaded into a
// directory (a private bpffs), where the test reads them back. Built by the test, never shipped.
//
//   load OBJECT DIR [-prog] [+prog] [prog=TYPE:ATTACH] [prog@PIN:FUNC] [!map]...
//     -prog         leave prog out (bpf_program__set_autoload false)
//     +prog         load prog although its section starts with '?'
//     prog=T:A      give prog program type T and expected attach type A (numbers)
//     prog@PIN:FUNC attach target of prog (freplace): function FUNC of the program pinned at PIN
//     !map          do not create map (bpf_map__set_autocreate false)
//
// Exit status 0 when the object loaded, 1 when libbpf refused it (its messages on stderr).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	char path[4096];
	int i, err;

	if (argc < 3) {
		fprintf(stderr, "usage: %s OBJECT DIR [-prog] [+prog] [prog=TYPE:ATTACH] [prog@PIN:FUNC] [!map]...\n", argv[0]);
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "open %s failed\n", argv[1]);
		return 1;
	}
	for (i = 3; i < argc; i++) {
		char *arg = argv[i], *eq = strchr(arg, '='), *at = strchr(arg, '@');
		const char *name = arg[0] == '-' || arg[0] == '+' ? arg + 1 : arg;

		if (arg[0] == '!') {
			struct bpf_map *map = bpf_object__find_map_by_name(obj, arg + 1);

			if (!map || bpf_map__set_autocreate(map, false)) {
				fprintf(stderr, "no map '%s'\n", arg + 1);
				return 2;
			}
			continue;
		}
		if (at) {
			char *colon = strrchr(at, ':');
			int target;

			*at = '\0';
			if (!colon)
				return 2;
			*colon = '\0';
			prog = bpf_object__find_program_by_name(obj, name);
			target = bpf_obj_get(at + 1);
			if (!prog || target < 0) {
				fprintf(stderr, "no program '%s' or target '%s'\n", name, at + 1);
				return 2;
			}
			if (bpf_program__set_attach_target(prog, target, colon + 1))
				return 2;
			continue;
		}
		if (eq)
			*eq = '\0';
		prog = bpf_object__find_program_by_name(obj, name);
		if (!prog) {
			fprintf(stderr, "no program '%s'\n", name);
			return 2;
		}
		if (eq) {
			unsigned int type, attach;

			if (sscanf(eq + 1, "%u:%u", &type, &attach) != 2)
				return 2;
			bpf_program__set_type(prog, type);
			bpf_program__set_expected_attach_type(prog, attach);
		} else {
			bpf_program__set_autoload(prog, arg[0] == '+');
		}
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "load failed: %d\n", err);
		bpf_object__close(obj);
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		if (bpf_program__fd(prog) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[2], bpf_program__name(prog));
		if (bpf_program__pin(prog, path)) {
			fprintf(stderr, "pin %s failed\n", path);
			return 1;
		}
	}
	bpf_object__close(obj);
	return 0;
}
