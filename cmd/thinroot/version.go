package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time by the Makefile
// (-ldflags -X main.version=... -X main.commit=...).
var version, commit = "", ""

func versionString() string {
	v, c := versionParts()
	return fmt.Sprintf("thinroot %s (commit %s)", v, c)
}

func versionParts() (string, string) {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "" && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	c := commit
	if c == "" {
		c = "unknown"
	}
	return v, c
}

var cmdVersion = &command{
	name: "version", group: "other",
	summary: "print the version and commit",
	uses:    useJSON,
	run: func(ctx context.Context, a *app, args []string) error {
		if a.jsonOut() {
			v, c := versionParts()
			return writeJSON(a.stdout, map[string]string{"version": v, "commit": c, "go": runtime.Version()})
		}
		_, err := fmt.Fprintln(a.stdout, versionString())
		return err
	},
}
