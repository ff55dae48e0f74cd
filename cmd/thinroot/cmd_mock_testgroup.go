//go:build crashpoints

package main

import "os"

// A test build (the crashpoints tag; never the released binary) takes
// the group of thinroot mock from THINROOT_TEST_MOCK_GROUP, so that the
// tests need not make a group named mock on the host: that group would
// change mock's default chrootgid, and so the build user, of every
// other test running on the host.
func init() {
	if g := os.Getenv("THINROOT_TEST_MOCK_GROUP"); g != "" {
		mockGroup = g
	}
}
