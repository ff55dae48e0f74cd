// Package procs finds processes by a mark, for tests that must show that
// every process of a build or a bootstrap died with it.
package procs

import (
	"bytes"
	"os"
	"strconv"
)

// Marked lists the pids, other than this process, whose environment or
// command line holds mark. A build's processes inherit
// THINROOT_BUILD_ID=<id>, and its sandbox's init carries its spec (with
// that variable) on its command line; their root, after the sandbox's
// pivot_root, names no host path, so the mark is what identifies them.
func Marked(mark string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if bytes.Contains(env, []byte(mark)) || bytes.Contains(cmdline, []byte(mark)) {
			pids = append(pids, pid)
		}
	}
	return pids
}
