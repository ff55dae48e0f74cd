package backend

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Backends register themselves by kind (from an init function of their
// package), so that a config names its backend with a word and its own
// settings, and no package above the backends builds one by hand.

// Spec names one backend instance: its kind and the settings of that
// kind (lvm2: volume_group). Intents record it, so that the process
// that finishes a dead operation opens the same backend.
type Spec struct {
	Kind    string            `json:"kind"`
	Options map[string]string `json:"options,omitempty"`
}

// String is the spec in one word per setting, sorted: "file",
// "lvm2 volume_group=vg0". Equal specs give equal strings.
func (s Spec) String() string {
	keys := make([]string, 0, len(s.Options))
	for k := range s.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(s.Kind)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, s.Options[k])
	}
	return b.String()
}

// Env is what every backend gets when it is opened.
type Env struct {
	// StateDir is thinroot's state directory (file and btrfs keep their
	// pool images there).
	StateDir string
	Log      *slog.Logger
}

// Kind is a registered kind of backend.
type Kind struct {
	Name string
	// Options are the settings a backend of this kind takes, by name;
	// others are not passed to it (a config may carry settings of
	// another kind). Required ones must be set.
	Options  []string
	Required []string
	// Open returns the backend for env and the spec's settings.
	Open func(env Env, options map[string]string) (Backend, error)
}

var (
	kindsMu sync.Mutex
	kinds   = map[string]Kind{}
)

// Register adds a kind of backend; a second kind of the same name panics.
func Register(k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic("backend: kind " + k.Name + " registered twice")
	}
	kinds[k.Name] = k
}

// Kinds lists the registered kinds, sorted.
func Kinds() []string {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	out := make([]string, 0, len(kinds))
	for n := range kinds {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup returns a registered kind.
func Lookup(name string) (Kind, bool) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	k, ok := kinds[name]
	return k, ok
}

// SpecFor is the spec of kind with the settings from options that the
// kind takes; it fails when the kind is unknown or a required setting is
// missing.
func SpecFor(kind string, options map[string]string) (Spec, error) {
	k, ok := Lookup(kind)
	if !ok {
		return Spec{}, fmt.Errorf("backend %q is not available (known: %s): %w", kind, strings.Join(Kinds(), ", "), ErrUnsupported)
	}
	s := Spec{Kind: kind}
	for _, n := range k.Options {
		if v := options[n]; v != "" {
			if s.Options == nil {
				s.Options = map[string]string{}
			}
			s.Options[n] = v
		}
	}
	for _, n := range k.Required {
		if s.Options[n] == "" {
			return Spec{}, fmt.Errorf("backend %s needs %s", kind, n)
		}
	}
	return s, nil
}

// Open opens the backend a spec names.
func Open(env Env, s Spec) (Backend, error) {
	k, ok := Lookup(s.Kind)
	if !ok {
		return nil, fmt.Errorf("backend %q is not available (known: %s): %w", s.Kind, strings.Join(Kinds(), ", "), ErrUnsupported)
	}
	for n := range s.Options {
		if !slices.Contains(k.Options, n) {
			return nil, fmt.Errorf("backend %s takes no setting %q", s.Kind, n)
		}
	}
	if env.Log == nil {
		env.Log = slog.Default()
	}
	return k.Open(env, s.Options)
}

// Defaults are the specs of every registered kind that needs no setting:
// the backends whose pools a Manager looks for without being told.
func Defaults() []Spec {
	var out []Spec
	for _, n := range Kinds() {
		if k, _ := Lookup(n); len(k.Required) == 0 {
			out = append(out, Spec{Kind: n})
		}
	}
	return out
}
