// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Host-side sizes and offsets of records.h, for the Rust layout drift test. */
#include <stddef.h>
#include "records.h"

#define F(s, f) offsetof(struct s, f)

const size_t record_layout_map[] = {
	sizeof(struct map_record), F(map_record, id), F(map_record, type), F(map_record, key_size),
	F(map_record, value_size), F(map_record, max_entries), F(map_record, flags),
	F(map_record, btf_id), F(map_record, known), F(map_record, elem_count),
	F(map_record, frozen), F(map_record, name),
};

const size_t record_layout_prog[] = {
	sizeof(struct prog_record), F(prog_record, id), F(prog_record, type),
	F(prog_record, expected_attach_type), F(prog_record, uid), F(prog_record, xlated_len),
	F(prog_record, jited_len), F(prog_record, verified_insns), F(prog_record, pages),
	F(prog_record, btf_id), F(prog_record, used_map_cnt), F(prog_record, known),
	F(prog_record, load_time_ns), F(prog_record, run_cnt), F(prog_record, run_time_ns),
	F(prog_record, recursion_misses), F(prog_record, tag), F(prog_record, gpl_compatible),
	F(prog_record, name), F(prog_record, func_name), F(prog_record, attach_to),
	F(prog_record, map_ids),
};

const size_t record_layout_link[] = {
	sizeof(struct link_record), F(link_record, id), F(link_record, type),
	F(link_record, prog_id), F(link_record, attach_type), F(link_record, known),
	F(link_record, target_kind), F(link_record, target_num), F(link_record, target_name),
};

const size_t record_layout_support[] = {
	sizeof(struct support_record), F(support_record, features),
};
