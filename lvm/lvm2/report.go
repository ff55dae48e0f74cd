package lvm2

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// lvFields are the lvs columns asked for, always by name: the default
// column set differs between lvm2 versions and configurations.
var lvFields = []string{
	"lv_name", "vg_name", "lv_attr", "pool_lv", "origin", "lv_size",
	"data_percent", "metadata_percent", "lv_tags", "lv_time",
	"lv_kernel_major", "lv_kernel_minor", "lv_active", "lv_when_full",
	"lv_uuid",
}

var vgFields = []string{"vg_name", "vg_size", "vg_free", "vg_extent_size", "vg_tags"}

// reportArgs are the options every report takes: JSON, sizes in plain bytes.
func reportArgs(fields []string) []string {
	return []string{"--reportformat", "json", "--units", "b", "--nosuffix", "-o", strings.Join(fields, ",")}
}

// lvRow is one row of lvs as lvm2 prints it in JSON: every value a string,
// "" for a value that does not apply (the usage of an inactive volume).
type lvRow struct {
	Name        string `json:"lv_name"`
	VG          string `json:"vg_name"`
	Attr        string `json:"lv_attr"`
	Pool        string `json:"pool_lv"`
	Origin      string `json:"origin"`
	Size        string `json:"lv_size"`
	DataPercent string `json:"data_percent"`
	MetaPercent string `json:"metadata_percent"`
	Tags        string `json:"lv_tags"`
	Time        string `json:"lv_time"`
	Major       string `json:"lv_kernel_major"`
	Minor       string `json:"lv_kernel_minor"`
	Active      string `json:"lv_active"`
	WhenFull    string `json:"lv_when_full"`
	UUID        string `json:"lv_uuid"`
}

type vgRow struct {
	Name       string `json:"vg_name"`
	Size       string `json:"vg_size"`
	Free       string `json:"vg_free"`
	ExtentSize string `json:"vg_extent_size"`
	Tags       string `json:"vg_tags"`
}

// report is lvm2's JSON report: {"report": [{"lv": [...]}]}, one element
// per volume group processed (lvs merges them into one by default).
type report struct {
	Report []struct {
		LV []lvRow `json:"lv"`
		VG []vgRow `json:"vg"`
	} `json:"report"`
}

func parseReport(out []byte) (*report, error) {
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("parse lvm2 JSON report: %w (output starts %q)", err, head(out, 80))
	}
	return &r, nil
}

func head(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

func parseLVs(out []byte) ([]LV, error) {
	r, err := parseReport(out)
	if err != nil {
		return nil, err
	}
	var lvs []LV
	for _, part := range r.Report {
		for _, row := range part.LV {
			lv, err := row.decode()
			if err != nil {
				return nil, err
			}
			lvs = append(lvs, lv)
		}
	}
	return lvs, nil
}

func parseVGs(out []byte) ([]VG, error) {
	r, err := parseReport(out)
	if err != nil {
		return nil, err
	}
	var vgs []VG
	for _, part := range r.Report {
		for _, row := range part.VG {
			vg, err := row.decode()
			if err != nil {
				return nil, err
			}
			vgs = append(vgs, vg)
		}
	}
	return vgs, nil
}

// LV is one logical volume as lvs reports it.
type LV struct {
	Name, VG string
	Attr     Attr
	Pool     string // pool_lv: the thin pool of a thin volume
	Origin   string
	Size     int64
	// DataPercent and MetadataPercent are -1 when lvm2 reports none (an
	// inactive volume, or a kind of LV that has no such figure).
	DataPercent, MetadataPercent float64
	Tags                         []string
	Created                      time.Time
	// Major and Minor are the device numbers, -1 when not active.
	Major, Minor int
	Active       bool
	// WhenFull is a thin pool's "error" or "queue" ("" when unset, which
	// means queue).
	WhenFull string
	UUID     string
}

// VG is one volume group as vgs reports it.
type VG struct {
	Name       string
	Size, Free int64
	ExtentSize int64
	Tags       []string
}

func (r lvRow) decode() (LV, error) {
	lv := LV{
		Name: r.Name, VG: r.VG, Attr: Attr(r.Attr), Pool: r.Pool, Origin: r.Origin,
		WhenFull: r.WhenFull, UUID: r.UUID, Tags: splitTags(r.Tags),
	}
	var err error
	if lv.Size, err = parseBytes(r.Size); err != nil {
		return lv, fmt.Errorf("lv %s: lv_size: %w", r.Name, err)
	}
	if lv.DataPercent, err = parsePercent(r.DataPercent); err != nil {
		return lv, fmt.Errorf("lv %s: data_percent: %w", r.Name, err)
	}
	if lv.MetadataPercent, err = parsePercent(r.MetaPercent); err != nil {
		return lv, fmt.Errorf("lv %s: metadata_percent: %w", r.Name, err)
	}
	lv.Major, lv.Minor = parseDevNum(r.Major), parseDevNum(r.Minor)
	// lv_active is "active" (or "local exclusive" and friends in a
	// clustered VG) for an active LV, "" otherwise.
	lv.Active = r.Active != "" && r.Active != "inactive" || lv.Attr.State() == 'a'
	lv.Created = parseTime(r.Time)
	return lv, nil
}

func (r vgRow) decode() (VG, error) {
	vg := VG{Name: r.Name, Tags: splitTags(r.Tags)}
	var err error
	if vg.Size, err = parseBytes(r.Size); err != nil {
		return vg, fmt.Errorf("vg %s: vg_size: %w", r.Name, err)
	}
	if vg.Free, err = parseBytes(r.Free); err != nil {
		return vg, fmt.Errorf("vg %s: vg_free: %w", r.Name, err)
	}
	if vg.ExtentSize, err = parseBytes(r.ExtentSize); err != nil {
		return vg, fmt.Errorf("vg %s: vg_extent_size: %w", r.Name, err)
	}
	return vg, nil
}

// parseBytes reads a size printed with --units b --nosuffix.
func parseBytes(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Some versions print sizes in bytes with a fraction (".00").
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, fmt.Errorf("not a byte count: %q", s)
		}
		n = int64(f)
	}
	return n, nil
}

func parsePercent(s string) (float64, error) {
	if s == "" {
		return -1, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1, fmt.Errorf("not a percentage: %q", s)
	}
	return f, nil
}

func parseDevNum(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// parseTime reads lv_time. Its format follows report/time_format in
// lvm.conf; the default is "%Y-%m-%d %T %z". A host with another format
// gets a zero time rather than a failed scan.
func parseTime(s string) time.Time {
	for _, layout := range []string{"2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05 -07:00", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0)
	}
	return time.Time{}
}

func splitTags(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
