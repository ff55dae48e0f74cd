package pkgmgr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Repo is one repository section of a dnf.conf.
type Repo struct {
	ID       string
	BaseURLs []string // variables expanded
	// Mirrorlist and Metalink are kept as written (expanded).
	Mirrorlist, Metalink string
}

// Repos lists the enabled repositories of the spec's dnf.conf, in file
// order, with $releasever, $basearch, $arch and dnf_vars expanded.
func (s *Spec) Repos() []Repo {
	var out []Repo
	for _, sec := range parseINI(s.Conf) {
		if sec.name == "main" {
			continue
		}
		if v, ok := sec.get("enabled"); ok && !iniTrue(v) {
			continue
		}
		r := Repo{ID: sec.name}
		if v, ok := sec.get("baseurl"); ok {
			for _, u := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
				r.BaseURLs = append(r.BaseURLs, s.expand(u))
			}
		}
		if v, ok := sec.get("mirrorlist"); ok {
			r.Mirrorlist = s.expand(strings.TrimSpace(v))
		}
		if v, ok := sec.get("metalink"); ok {
			r.Metalink = s.expand(strings.TrimSpace(v))
		}
		out = append(out, r)
	}
	return out
}

// expand replaces dnf's variables in a URL, as mock's expand_url_vars.
func (s *Spec) expand(v string) string {
	vars := map[string]string{"releasever": s.Releasever, "basearch": basearch(s.TargetArch), "arch": s.TargetArch}
	for k, x := range s.Vars {
		vars[k] = x
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	// Longer names first, so $basearch is not read as $base + "arch".
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		v = strings.ReplaceAll(v, "${"+k+"}", vars[k])
		v = strings.ReplaceAll(v, "$"+k, vars[k])
	}
	return v
}

// basearch is dnf's base architecture of arch.
func basearch(arch string) string {
	switch arch {
	case "i386", "i486", "i586", "i686", "athlon":
		return "i386"
	case "armv7hl", "armv7hnl":
		return "armhfp"
	case "ppc64le", "x86_64", "aarch64", "s390x", "ppc64", "riscv64", "noarch":
		return arch
	}
	return arch
}

// Checksums are the repositories' metadata checksums: each enabled
// repository's repomd.xml, hashed.
type Checksums struct {
	// Repos maps a repository id to the sha256 of its repomd.xml.
	Repos map[string]string
	// Digest hashes all of them together (sorted by id).
	Digest string
}

// RepoChecksums reads the checksums of the enabled repositories'
// metadata. A file:// repository's repomd.xml is read where it is; any
// other repository's comes from the package manager's cache after a
// makecache run (under the cache lock), so mirror lists, metalinks and
// the config's TLS settings are dnf's business. root is where that run
// installs nothing (any initialized root of the config).
func (s *Spec) RepoChecksums(ctx context.Context, root string, o RunOptions) (Checksums, error) {
	sums := Checksums{Repos: map[string]string{}}
	var remote []string
	for _, r := range s.Repos() {
		if b, ok := s.localRepomd(r); ok {
			sums.Repos[r.ID] = sha(b)
		} else {
			remote = append(remote, r.ID)
		}
	}
	if len(remote) > 0 {
		if s.Online {
			if err := s.Run(ctx, root, o, "makecache"); err != nil {
				return sums, fmt.Errorf("repository metadata: %w", err)
			}
		}
		for _, id := range remote {
			b, err := s.cachedRepomd(id)
			if err != nil {
				return sums, fmt.Errorf("repository %s: %w", id, err)
			}
			sums.Repos[id] = sha(b)
		}
	}
	ids := make([]string, 0, len(sums.Repos))
	for id := range sums.Repos {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	h := sha256.New()
	for _, id := range ids {
		fmt.Fprintf(h, "%s %s\n", id, sums.Repos[id])
	}
	sums.Digest = hex.EncodeToString(h.Sum(nil))
	return sums, nil
}

// cachedRepomd reads a repository's repomd.xml from the package
// manager's cache, the newest when there are several.
func (s *Spec) cachedRepomd(id string) ([]byte, error) {
	var best string
	var bestT int64
	for _, d := range s.cachedRepoDirs(id) {
		m := filepath.Join(d, "repodata", "repomd.xml")
		if fi, err := os.Stat(m); err == nil && fi.ModTime().UnixNano() > bestT {
			best, bestT = m, fi.ModTime().UnixNano()
		}
	}
	if best == "" {
		return nil, fmt.Errorf("no cached repomd.xml in %s", s.Cache().Dir)
	}
	return os.ReadFile(best)
}

// cachedRepoDirs are a repository's directories in the package manager's
// cache: <cachedir>/<id>-<16 hex digits> (dnf hashes the repository's
// URLs into the suffix). The suffix is checked so that "fedora" does not
// take "fedora-cisco-openh264"'s.
func (s *Spec) cachedRepoDirs(id string) []string {
	ms, _ := filepath.Glob(filepath.Join(s.Cache().Dir, id+"-*"))
	out := ms[:0]
	for _, m := range ms {
		if isHex16(strings.TrimPrefix(filepath.Base(m), id+"-")) {
			out = append(out, m)
		}
	}
	return out
}

func isHex16(s string) bool {
	return len(s) == 16 && strings.Trim(s, "0123456789abcdef") == ""
}

// reloadLocalRepos makes the package manager read again each file://
// repository whose repomd.xml changed since it cached it. dnf would trust
// its copy until metadata_expire runs out and, its clock counting whole
// seconds, even with metadata_expire=0 when the repository changed within
// a second of the last run; builddep snapshots are keyed on the
// repository as it is now, so a run must install from that. The stale
// copy is removed, and read again at once by a makecache of those
// repositories when the config is offline (-C finds no cache otherwise);
// reading a local repository needs no network. Called under the cache
// lock.
func (s *Spec) reloadLocalRepos(ctx context.Context, root string, o RunOptions) error {
	var stale []string
	for _, r := range s.Repos() {
		live, ok := s.localRepomd(r)
		if !ok {
			continue
		}
		dropped := false
		for _, d := range s.cachedRepoDirs(r.ID) {
			b, err := os.ReadFile(filepath.Join(d, "repodata", "repomd.xml"))
			if err == nil && bytes.Equal(b, live) {
				continue
			}
			if err := os.RemoveAll(d); err != nil {
				return fmt.Errorf("drop the stale metadata of repository %s: %w", r.ID, err)
			}
			dropped = true
		}
		if dropped {
			stale = append(stale, r.ID)
		}
	}
	if len(stale) == 0 || s.Online {
		return nil
	}
	online := *s
	online.Online = true
	args := []string{"makecache"}
	for _, id := range stale {
		args = append(args, "--repo="+id)
	}
	if err := online.run(ctx, root, o, args...); err != nil {
		return fmt.Errorf("read the changed local repositories %v again: %w", stale, err)
	}
	return nil
}

// localRepomd reads the repomd.xml of a repository's first readable
// file:// URL.
func (s *Spec) localRepomd(r Repo) ([]byte, bool) {
	for _, u := range r.BaseURLs {
		p, ok := strings.CutPrefix(u, "file://")
		if !ok {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(p, "repodata", "repomd.xml")); err == nil {
			return b, true
		}
	}
	return nil, false
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// section is one [section] of an INI file.
type section struct {
	name string
	keys []string
	vals map[string]string
}

func (s *section) get(k string) (string, bool) {
	v, ok := s.vals[k]
	return v, ok
}

// parseINI reads dnf's configuration format: [sections], key=value (or
// key: value), continuation lines indented, comments with # or ;. A key
// given twice keeps the last value, as dnf does.
func parseINI(text string) []*section {
	var out []*section
	var cur *section
	last := ""
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimRight(raw, " \t\r")
		trim := strings.TrimSpace(line)
		switch {
		case trim == "" || strings.HasPrefix(trim, "#") || strings.HasPrefix(trim, ";"):
			last = ""
			continue
		case strings.HasPrefix(trim, "[") && strings.HasSuffix(trim, "]"):
			cur = &section{name: strings.TrimSpace(trim[1 : len(trim)-1]), vals: map[string]string{}}
			out = append(out, cur)
			last = ""
			continue
		}
		if cur == nil {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && last != "" {
			cur.vals[last] += "\n" + trim
			continue
		}
		k, v, ok := strings.Cut(trim, "=")
		if !ok {
			k, v, ok = strings.Cut(trim, ":")
		}
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, seen := cur.vals[k]; !seen {
			cur.keys = append(cur.keys, k)
		}
		cur.vals[k] = strings.TrimSpace(v)
		last = k
	}
	return out
}

func iniTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}
