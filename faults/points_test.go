package faults_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/faults"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

var hitRE = regexp.MustCompile(`crashpoint\.Hit\("([^"]+)"\)`)

// TestMatrixCoversEveryPoint: every crash point in the code is killed by
// the matrix, and the matrix names no point the code lacks. A new step
// with a crash point and no row fails here.
func TestMatrixCoversEveryPoint(t *testing.T) {
	r := faults.Record(t, "crash", "every point in the matrix", "")
	repo := lvmtest.RepoRoot(t)
	inCode := map[string]string{}
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range hitRE.FindAllStringSubmatch(string(data), -1) {
			inCode[m[1]] = strings.TrimPrefix(p, repo+"/")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	matrix := faults.Points()
	for be, skipped := range map[string]int{"file": 0, "lvm2": 4, "btrfs": 2} {
		r.Check(len(faults.PointsFor(be)) == len(matrix)-skipped, "the %s matrix skips %d points, want %d",
			be, len(matrix)-len(faults.PointsFor(be)), skipped)
	}
	r.Runs(len(matrix))
	r.Check(len(inCode) >= 30, "found only %d crash points in the code: the scan is broken", len(inCode))
	for p, file := range inCode {
		r.Check(slices.Contains(matrix, p), "crash point %s (%s) is not in the matrix", p, file)
	}
	for _, p := range matrix {
		_, ok := inCode[p]
		r.Check(ok || p == faults.External, "the matrix names %s, which no code hits", p)
	}
}
