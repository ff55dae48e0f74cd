package lvm

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// A spare is warmed only where its image has data: the pages of a hot set
// that fall in its holes are left out.
func TestInDataLeavesHoles(t *testing.T) {
	page := int64(os.Getpagesize())
	// Data runs are whole filesystem blocks; a megabyte apart keeps them
	// apart on any block size.
	const gap = 256
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 2*page)
	for i := range block {
		block[i] = 1
	}
	for _, at := range []int64{0, gap, 3 * gap} { // data at pages 0-1, 256-257, 768-769
		if _, err := f.WriteAt(block, at*page); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(5 * gap * page); err != nil {
		t.Fatal(err)
	}
	hot := []int64{0, 1, 2, 100, gap, gap + 1, 2 * gap, 3*gap + 1, 4 * gap}
	got := inData(f, hot)
	want := []int64{0, 1, gap, gap + 1, 3*gap + 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("inData = %v, want %v", got, want)
	}
	if got := inData(f, nil); len(got) != 0 {
		t.Errorf("inData of no pages = %v", got)
	}
}
