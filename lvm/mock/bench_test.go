package mock

import (
	"fmt"
	"testing"
)

// Name checks run on every mkdir, snapshot and config load.
func BenchmarkValidateExt(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if err := ValidateExt("fedora-41-x86_64", "try-1_build+2"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateRoot(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if err := ValidateRoot("opensuse-leap-15.5-x86_64"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateRejected(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if err := ValidateExt("fedora-41-x86_64", "bad/name"); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkParseVolume takes a volume name apart against ten known roots, as
// publish does for every volume of every pool.
func BenchmarkParseVolume(b *testing.B) {
	var roots []string
	for i := 0; i < 10; i++ {
		roots = append(roots, fmt.Sprintf("fedora-%02d-x86_64", i))
	}
	lv := WorkdirVolume("fedora-07-x86_64", "w012")
	for i := 0; i < b.N; i++ {
		if vn, ok := ParseVolume(lv, roots); !ok || !vn.Workdir {
			b.Fatal("not parsed")
		}
	}
}
