package main

import (
	"fmt"
	"os"
	"sort"
)

// Benchmark 5 compares how many lvm2 commands each operation runs. The
// thinroot side is counted in the VM (make test-vm) through the lvm2
// backend's exec wrapper and handed over as a JSON file; this program
// only reads it. The mock side is not measured: it is derived below from
// the lvm_root plugin's published source, call by call.
//
// The file, bench/results/lvm-counts.json by default:
//
//	{
//	  "source": "how the counts were taken (harness, kernel, lvm2 version)",
//	  "taken": "2026-01-26T10:00:00Z",
//	  "operations": {
//	    "init":           {"invocations": 4, "commands": {"lvcreate": 2, "lvs": 1, "lvremove": 1}},
//	    "snapshot":       {"invocations": 1, "commands": {"lvcreate": 1}},
//	    "workdir_create": {"invocations": 1, "commands": {"lvcreate": 1}},
//	    "workdir_remove": {"invocations": 1, "commands": {"lvremove": 1}},
//	    "list":           {"invocations": 1, "commands": {"lvs": 1}}
//	  }
//	}
//
// (the numbers above only show the shape). "argv", a list of the command
// lines, may be added per operation and is shown when present.

// LVMCounts is the VM run's file.
type LVMCounts struct {
	Source     string           `json:"source"`
	Taken      string           `json:"taken,omitempty"`
	Operations map[string]LVMOp `json:"operations"`
}

// LVMOp is what one operation ran.
type LVMOp struct {
	Invocations int            `json:"invocations"`
	Commands    map[string]int `json:"commands,omitempty"`
	Argv        [][]string     `json:"argv,omitempty"`
}

func readLVMCounts(path string) (*LVMCounts, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	var c LVMCounts
	if err := readJSON(path, &c); err != nil {
		return nil, err
	}
	if len(c.Operations) == 0 {
		return nil, fmt.Errorf("%s: no operations", path)
	}
	return &c, nil
}

// mockOp is mock's side of one operation, derived from its source.
type mockOp struct {
	Op      string // key in LVMCounts.Operations
	Label   string
	Command string // the mock command line
	Hooks   string // the plugin hooks it runs, in order
	LVS     int
	Create  int
	Remove  int
	Display int
	// Derivation walks the calls, with the plugin's line numbers.
	Derivation string
}

func (o mockOp) Total() int { return o.LVS + o.Create + o.Remove + o.Display }

// mockSource pins what the derivation was read from.
const mockSource = "rpm-software-management/mock, commit 817875207de7 (2026-05-19); " +
	"mock/py/mockbuild/plugins/lvm_root.py last changed in 5bec3fbfbd5a. Line numbers below are that file's, " +
	"unless a file is named."

// mockOps is the static derivation. Each lvm_do() call is one lvm2
// process: query_lvs (l.108) runs one lvs over the whole volume group, and
// query_lv (l.113), get_lv_path (l.120), lv_exists (l.127), lv_is_our
// (l.139) and list_our_lvs (l.143) each call it once; check_pool_size
// (l.273) runs lvdisplay twice (allocated_pool_data l.223,
// allocated_pool_metadata l.234).
var mockOps = []mockOp{
	{
		Op: "init", Label: "init (bootstrap a config, postinit snapshot)",
		Command: "mock -r R --init (clean on, as by default)",
		Hooks:   "postclean, mount_root, postinit",
		LVS:     11, Create: 2, Display: 2,
		Derivation: "mock.py l.909-912 runs clean() then init(). clean(): buildroot.delete() (buildroot.py l.1107) skips " +
			"umount_root as the basedir does not exist yet, then postclean -> delete_head (l.180): umount() -> " +
			"prepare_mount (l.248) -> get_lv_path: lvs #1; lv_exists: lvs #2. init(): mount_root (l.290): " +
			"cond -> get_current_snapshot (l.149), no snapinfo -> lv_is_our(postinit): lvs #3; acquired(): " +
			"lv_exists(pool): lvs #4, pool exists -> get_current_snapshot: lvs #5; lv_exists(head): lvs #6; " +
			"create_base (l.215): lvcreate -T -V #7, get_lv_path for mkfs: lvs #8; then lv_exists: lvs #9; " +
			"prepare_mount: lvs #10; check_pool_size: lvdisplay #11, #12. postinit (l.333) -> make_snapshot " +
			"(l.172): lv_exists: lvs #13, lvcreate -s #14, set_current_snapshot -> lv_is_our: lvs #15. " +
			"In a volume group without the pool, acquired() runs create_pool instead (lv_exists: lvs, lvcreate -T) " +
			"and skips two lvs: 15 as well (10 lvs, 3 lvcreate, 2 lvdisplay).",
	},
	{
		Op: "snapshot", Label: "snapshot (of the head volume)",
		Command: "mock -r R --snapshot NAME",
		Hooks:   "make_snapshot",
		LVS:     2, Create: 1,
		Derivation: "mock.py l.1084-1088 calls the make_snapshot hook alone (no init). make_snapshot (l.172): " +
			"lv_exists: lvs #1; lvcreate -s #2; set_current_snapshot (l.162) -> lv_is_our: lvs #3.",
	},
	{
		Op: "workdir_create", Label: "workdir create (new unique-ext from postinit, mounted)",
		Command: "mock -r R --uniqueext EXT --shell (first use of EXT)",
		Hooks:   "mount_root, postinit",
		LVS:     5, Create: 1, Display: 2,
		Derivation: "--shell runs init() without clean (mock.py l.927). mount_root (l.290): cond -> " +
			"get_current_snapshot, no snapinfo for EXT -> lv_is_our(postinit): lvs #1, then " +
			"set_current_snapshot -> lv_is_our: lvs #2; postinit exists, so the loop ends; lv_exists(head): lvs #3; " +
			"create_head (l.266) with get_current_snapshot: lvs #4, lvcreate -s --setactivationskip n #5; " +
			"prepare_mount: lvs #6; check_pool_size: lvdisplay #7, #8. postinit makes no snapshot (the root " +
			"was initialized). mock --rebuild (clean on) adds postclean's 2 lvs first: 10.",
	},
	{
		Op: "workdir_remove", Label: "workdir remove (unmount, remove the head volume)",
		Command: "mock -r R --uniqueext EXT --clean",
		Hooks:   "umount_root, postclean",
		LVS:     2, Remove: 1,
		Derivation: "mock.py l.914-916 -> clean() -> buildroot.delete() (buildroot.py l.1107): umount_root " +
			"(l.326) -> umount() -> prepare_mount -> get_lv_path: lvs #1, unmount; postclean -> delete_head " +
			"(l.180): lv_exists: lvs #2; lvremove -f #3.",
	},
	{
		Op: "list", Label: "list snapshots",
		Command: "mock -r R --list-snapshots",
		Hooks:   "list_snapshots",
		LVS:     2,
		Derivation: "mock.py l.856-857 -> list_snapshots (l.360): get_current_snapshot with a snapinfo record -> " +
			"lv_is_our: lvs #1; list_our_lvs: lvs #2. Without a record for the ext: 3 (lv_is_our(postinit), " +
			"set_current_snapshot's lv_is_our, list_our_lvs).",
	},
}

// commandsText renders an operation's per-command counts.
func commandsText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, m[k])
	}
	return s
}
