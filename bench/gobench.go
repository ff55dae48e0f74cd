package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// The Go benchmarks of hot paths inside the process (lvm and fsview
// *_test.go), run with go test and summarized like the rest.

var goBenchPackages = []string{"./lvm/", "./lvm/mock/", "./fsview/"}

func (e *env) goBench(benchtime string, count int) (*Benchmark, error) {
	b := &Benchmark{ID: "go", Title: "Go benchmarks of hot paths",
		What: "go test -bench: time per operation inside the process, over -count runs"}
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem",
		"-benchtime", benchtime, "-count", strconv.Itoa(count)}, goBenchPackages...)
	cmd := exec.CommandContext(e.ctx, "go", args...)
	cmd.Dir = e.repo
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return b, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, tail(errb.String()+out.String(), 800))
	}
	b.Commands = []string{"go " + strings.Join(args, " ")}
	type acc struct{ ns, bytes, allocs []float64 }
	runs := map[string]*acc{}
	var order []string
	pkg := ""
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = p[strings.LastIndex(p, "/")+1:]
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := pkg + "." + strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // the GOMAXPROCS suffix
		}
		a := runs[name]
		if a == nil {
			a = &acc{}
			runs[name] = a
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				a.ns = append(a.ns, v)
			case "B/op":
				a.bytes = append(a.bytes, v)
			case "allocs/op":
				a.allocs = append(a.allocs, v)
			}
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i] < order[j] })
	for _, name := range order {
		a := runs[name]
		m := b.add(measure("go/"+name, "go", "", name, "ns/op", a.ns))
		m.Extra = map[string]float64{}
		if len(a.bytes) > 0 {
			m.Extra["bytes_per_op_p50"] = measure("", "", "", "", "", a.bytes).P50
		}
		if len(a.allocs) > 0 {
			m.Extra["allocs_per_op_p50"] = measure("", "", "", "", "", a.allocs).P50
		}
	}
	if len(b.Measurements) == 0 {
		return b, fmt.Errorf("go test printed no benchmark results")
	}
	b.Notes = append(b.Notes, "Each row: p50 and p95 of ns/op over the -count runs; B/op and allocs/op are their p50.")
	return b, nil
}
