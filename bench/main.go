// Command bench measures thinroot against what a user would otherwise do
// (untar a root cache, cp -a, an overlayfs mount) on this machine, in one
// run, and writes BENCHMARKS.json and BENCHMARKS.md from the figures.
//
//	go run ./bench run      the whole benchmark (as root; see scripts/bench.sh)
//	go run ./bench report   regenerate BENCHMARKS.md and the chart from BENCHMARKS.json
//	go run ./bench genroot  fill $ROOT with the synthetic root (a bootstrap command)
//	go run ./bench clean    remove what an interrupted run left in the scratch directory
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:])
	case "report":
		err = cmdReport(os.Args[2:])
	case "genroot":
		err = cmdGenroot(os.Args[2:])
	case "clean":
		err = cmdClean(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "bench: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: bench run|report|genroot|clean [flags]
  run      measure everything and write BENCHMARKS.json, BENCHMARKS.md and the chart
  report   regenerate BENCHMARKS.md and the chart from BENCHMARKS.json
  genroot  fill $ROOT with the deterministic synthetic root (bootstrap command)
  clean    unmount and remove what an interrupted run left behind`)
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
