package lvm2

import (
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/thinroot/thinroot/lvm/backend"
	"github.com/thinroot/thinroot/lvm/mock"
)

// The fixtures must carry exactly the fields the backend asks for, or they
// no longer show what the parser gets (re-record with testdata/lvm2/record).
func TestFixturesHaveRequestedFields(t *testing.T) {
	for _, f := range []struct {
		name, kind string
		fields     []string
	}{
		{"lvs-vg.json", "lv", lvFields},
		{"lvs-one.json", "lv", lvFields},
		{"lvs-inactive.json", "lv", lvFields},
		{"lvs-reactivated.json", "lv", lvFields},
		{"lvs-full.json", "lv", lvFields},
		{"vgs.json", "vg", vgFields},
	} {
		var raw struct {
			Report []map[string][]map[string]any `json:"report"`
		}
		if err := json.Unmarshal([]byte(fixture(t, f.name)), &raw); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		rows := raw.Report[0][f.kind]
		if len(rows) == 0 {
			t.Fatalf("%s: no %s rows", f.name, f.kind)
		}
		var got []string
		for k, v := range rows[0] {
			got = append(got, k)
			if _, ok := v.(string); !ok {
				t.Errorf("%s: %s is %T, want a string (--reportformat json)", f.name, k, v)
			}
		}
		want := slices.Clone(f.fields)
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: fields %v, the backend asks for %v", f.name, got, want)
		}
	}
}

func TestParseLVs(t *testing.T) {
	lvs, err := parseLVs([]byte(fixture(t, "lvs-vg.json")))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]LV{}
	for _, lv := range lvs {
		byName[lv.Name] = lv
	}
	pool, ok := byName["mockbuild"]
	if !ok {
		t.Fatalf("no pool in %v", lvs)
	}
	if !pool.Attr.IsThinPool() || !pool.Active || pool.Size != 96<<20 || pool.WhenFull != "error" {
		t.Errorf("pool = %+v", pool)
	}
	if pool.DataPercent <= 0 || pool.MetadataPercent <= 0 {
		t.Errorf("pool usage %v/%v, want both > 0", pool.DataPercent, pool.MetadataPercent)
	}
	if !slices.Contains(pool.Tags, "thinroot.warn=75") || !slices.Contains(pool.Tags, "thinroot.refuse=90") {
		t.Errorf("pool tags %q", pool.Tags)
	}
	if pool.Created.IsZero() {
		t.Errorf("pool lv_time not parsed")
	}

	snap := byName["mock.fedora-41-x86_64.postinit"]
	if !snap.Attr.IsThinVolume() || snap.Active || !snap.Attr.SkipActivation() {
		t.Errorf("snapshot %+v: want an inactive thin volume skipped by activation", snap)
	}
	if snap.Major != -1 || snap.DataPercent != -1 || snap.Origin != "+mock.fedora-41-x86_64.head" || snap.Pool != "mockbuild" {
		t.Errorf("snapshot %+v", snap)
	}

	work := byName["+mock.fedora-41-x86_64.try1"]
	if !work.Active || work.Major <= 0 || work.Minor < 0 || work.Attr.SkipActivation() {
		t.Errorf("workdir %+v: want active with device numbers", work)
	}
	if !slices.Equal(work.Tags, []string{"thinroot.test=1"}) {
		t.Errorf("workdir tags %q", work.Tags)
	}

	mockPool := byName["mockpool"]
	if mockPool.WhenFull != "queue" {
		t.Errorf("mock's pool when_full %q, want queue (mock does not set it)", mockPool.WhenFull)
	}
	if f := byName["foreign"]; f.Attr.Type() != '-' || f.Pool != "" {
		t.Errorf("foreign %+v", f)
	}
}

func TestParseInactive(t *testing.T) {
	lvs, err := parseLVs([]byte(fixture(t, "lvs-inactive.json")))
	if err != nil {
		t.Fatal(err)
	}
	for _, lv := range lvs {
		if lv.Active || lv.Major != -1 || lv.Minor != -1 {
			t.Errorf("%s: %+v, want inactive", lv.Name, lv)
		}
		if lv.DataPercent != -1 || lv.MetadataPercent != -1 {
			t.Errorf("%s: usage %v/%v, want -1 (lvm2 prints \"\")", lv.Name, lv.DataPercent, lv.MetadataPercent)
		}
	}
}

func TestParseVGs(t *testing.T) {
	vgs, err := parseVGs([]byte(fixture(t, "vgs.json")))
	if err != nil {
		t.Fatal(err)
	}
	if len(vgs) != 1 {
		t.Fatalf("%d vgs", len(vgs))
	}
	vg := vgs[0]
	if vg.Name != "thinroot_vm" || vg.Size <= 0 || vg.Free <= 0 || vg.Free >= vg.Size || vg.ExtentSize != 4<<20 {
		t.Errorf("vg %+v", vg)
	}
}

func TestParseBad(t *testing.T) {
	for _, in := range []string{"", "WARNING: not json", `{"report":[{"lv":[{"lv_size":"12x"}]}]}`, `{"report":[{"lv":[{"data_percent":"n/a"}]}]}`} {
		if _, err := parseLVs([]byte(in)); err == nil {
			t.Errorf("parseLVs(%q) succeeded", in)
		}
	}
}

func testBackend(t *testing.T) (*Backend, *fakeLVM) {
	t.Helper()
	f := newFakeLVM(t)
	b, err := New("thinroot_vm", Options{Runner: &Runner{LVM: f.bin}, Log: slog.New(slog.DiscardHandler), SysDir: t.TempDir(), DevDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return b, f
}

func TestScanReport(t *testing.T) {
	b, f := testBackend(t)
	f.set("lvs", fixture(t, "lvs-vg.json"), "  WARNING: noise on stderr never reaches the parser.\n", 0)
	r, err := b.Scan(t.Context(), "mockbuild")
	if err != nil {
		t.Fatal(err)
	}
	if n := b.Runner().Total(); n != 1 {
		t.Errorf("Scan ran %d lvm2 commands (%v), want 1", n, f.calls())
	}
	if r.Backend != "lvm2" || r.SizeBytes != 96<<20 || r.Health != "" || r.WarnPercent != 75 || r.RefusePercent != 90 {
		t.Errorf("report %+v", r)
	}
	if r.DataPercent <= 0 || r.UsedBytes != int64(float64(r.SizeBytes)*r.DataPercent/100) {
		t.Errorf("usage %v%% %d bytes of %d", r.DataPercent, r.UsedBytes, r.SizeBytes)
	}
	var names []string
	for _, v := range r.Volumes {
		names = append(names, v.Name)
		if !v.Thin || v.Pool != "mockbuild" {
			t.Errorf("volume %+v: want a thin volume of mockbuild", v)
		}
	}
	want := []string{"+mock.fedora-41-x86_64.head", "+mock.fedora-41-x86_64.try1", "mock.fedora-41-x86_64.postinit"}
	if !slices.Equal(names, want) {
		t.Errorf("volumes %v, want %v (nothing of another pool, nothing outside a pool)", names, want)
	}
	for _, v := range r.Volumes {
		if v.Name == "mock.fedora-41-x86_64.postinit" && (v.Active || v.Origin != "+mock.fedora-41-x86_64.head" || v.UsedBytes != 0) {
			t.Errorf("snapshot %+v", v)
		}
		if v.Name == "+mock.fedora-41-x86_64.try1" && (!v.Active || v.UsedBytes == 0 || v.VirtualSize != 256<<20) {
			t.Errorf("workdir %+v", v)
		}
	}

	// mock's own pool: its volumes, none of thinroot's.
	m, err := b.Scan(t.Context(), "mockpool")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Volumes) != 3 || m.WarnPercent != backend.DefaultWarnPercent {
		t.Errorf("mockpool %+v", m)
	}
	for _, v := range m.Volumes {
		if !mock.IsOurs("epel-9-x86_64", v.Name) {
			t.Errorf("mockpool volume %s is not mock's epel-9-x86_64", v.Name)
		}
	}

	for _, name := range []string{"foreign", "nosuch", "+mock.fedora-41-x86_64.head"} {
		if _, err := b.Scan(t.Context(), name); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("Scan(%s) = %v, want ErrNotFound (not a thin pool)", name, err)
		}
	}
	pools, err := b.Pools(t.Context())
	if err != nil || !slices.Equal(pools, []string{"mockbuild", "mockpool"}) {
		t.Errorf("Pools = %v, %v", pools, err)
	}
}

func TestScanFullAndInactive(t *testing.T) {
	b, f := testBackend(t)
	f.set("lvs", fixture(t, "lvs-full.json"), "", 0)
	r, err := b.Scan(t.Context(), "tiny")
	if err != nil {
		t.Fatal(err)
	}
	if r.Health != HealthOutOfData || r.DataPercent != 100 || r.UsedBytes != r.SizeBytes {
		t.Errorf("full pool %+v", r)
	}

	f.set("lvs", fixture(t, "lvs-inactive.json"), "", 0)
	r, err = b.Scan(t.Context(), "mockbuild")
	if err != nil {
		t.Fatal(err)
	}
	// An inactive pool has no figures; that is not a health problem.
	if r.Health != "" || r.DataPercent != 0 || r.MetadataPercent != 0 || len(r.Volumes) != 3 {
		t.Errorf("inactive pool %+v", r)
	}
	for _, v := range r.Volumes {
		if v.Active || v.Mount.Source != "" {
			t.Errorf("inactive volume %+v", v)
		}
	}
}

func TestPoolHealth(t *testing.T) {
	for attr, want := range map[Attr]string{
		"twi-aotz--": "",
		"twi---tz--": "",
		"twi-aotzD-": HealthOutOfData,
		"twi-aotzM-": HealthMetadataRO,
		"twi-aotzF-": HealthFailed,
		"twi-cotz--": HealthCheckNeeded,
		"twi-aotzp-": HealthPartial,
		"twi":        "",
	} {
		if got := attr.PoolHealth(); got != want {
			t.Errorf("PoolHealth(%q) = %q, want %q", attr, got, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]int64{
		"2026-11-26 08:49:05 +0000": 1795682945,
		"2026-11-26 09:49:05 +0100": 1795682945,
		"1795682945":                1795682945,
	} {
		if got := parseTime(in).Unix(); got != want {
			t.Errorf("parseTime(%q) = %d, want %d", in, got, want)
		}
	}
	if !parseTime("yesterday").IsZero() {
		t.Error("an unknown format should give the zero time")
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"+mock.fedora-41-x86_64.head", "mock.rhel+epel-8-x86_64.postinit", "a", "x_y-z.1"} {
		if err := validateLV(ok); err != nil {
			t.Errorf("validateLV(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "-a", "a/b", "a b", "a\nb", "a:b", "ä", strings.Repeat("x", 128)} {
		if err := validateLV(bad); !errors.Is(err, backend.ErrInvalidName) {
			t.Errorf("validateLV(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	for _, ok := range []string{"thinroot.warn=75", "a/b:c&d#e!f", "x+y_z-1.2"} {
		if err := ValidateTag(ok); err != nil {
			t.Errorf("ValidateTag(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "a b", "a,b", "a@b", "ä", strings.Repeat("t", 1025)} {
		if err := ValidateTag(bad); !errors.Is(err, backend.ErrInvalidName) {
			t.Errorf("ValidateTag(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	if _, err := New("bad vg", Options{}); !errors.Is(err, backend.ErrInvalidName) {
		t.Errorf("New(bad vg) = %v", err)
	}
}
