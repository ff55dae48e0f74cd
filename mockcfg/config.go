package mockcfg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"

	"go.starlark.net/starlark"
)

// Config is a loaded, fully rendered mock config.
type Config struct {
	name   string
	file   string
	values Dict
	order  []string          // top-level keys in the order mock's dict has them
	where  map[string]origin // where each top-level key was last assigned
}

// Name is the config's name (mock's chroot_name: the file name without .cfg).
func (c *Config) Name() string { return c.name }

// File is the config file that was read for the name.
func (c *Config) File() string { return c.file }

// Values returns the whole config: keys as mock names them, values in the
// Go form described on List. The caller must not modify it.
func (c *Config) Values() Dict { return c.values }

// Keys returns the top-level keys in the order mock's dict holds them.
func (c *Config) Keys() []string { return append([]string(nil), c.order...) }

// Get returns the value at a key path, e.g. Get("plugin_conf",
// "lvm_root_opts", "size"). The first key may be an alias (yum.conf).
func (c *Config) Get(path ...string) (any, bool) {
	if len(path) == 0 {
		return c.values, true
	}
	var v any = c.values
	for n, k := range path {
		if n == 0 {
			k = CanonicalKey(k)
		}
		d, ok := v.(Dict)
		if !ok {
			return nil, false
		}
		if v, ok = d[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// keyPath prints a key path the way a config writes it.
func keyPath(path []string) string {
	var sb strings.Builder
	sb.WriteString("config_opts")
	for _, k := range path {
		sb.WriteString("[" + pyQuote(k) + "]")
	}
	return sb.String()
}

// errAt builds an error about a key, naming where the key was last set.
func (c *Config) errAt(path []string, format string, a ...any) error {
	msg := keyPath(path) + ": " + fmt.Sprintf(format, a...)
	if len(path) > 0 {
		if w, ok := c.where[CanonicalKey(path[0])]; ok {
			return &Error{File: w.file, Line: w.line, Msg: msg}
		}
	}
	return &Error{File: c.file, Msg: msg}
}

// String returns the string at path; ok is false when the key is missing
// or None. A value of another type is an error.
func (c *Config) String(path ...string) (string, bool, error) {
	v, ok := c.Get(path...)
	if !ok || v == nil {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", true, c.errAt(path, "is %s, want a string", typeName(v))
	}
	return s, true, nil
}

// Bool returns the truth of the value at path as Python sees it (missing
// is false, ok reports presence).
func (c *Config) Bool(path ...string) (val, ok bool) {
	v, ok := c.Get(path...)
	if !ok {
		return false, false
	}
	return truth(v), true
}

// Int returns the integer at path (a bool counts, as in Python).
func (c *Config) Int(path ...string) (int64, bool, error) {
	v, ok := c.Get(path...)
	if !ok || v == nil {
		return 0, false, nil
	}
	switch x := v.(type) {
	case int64:
		return x, true, nil
	case bool:
		if x {
			return 1, true, nil
		}
		return 0, true, nil
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true, nil
		}
	}
	return 0, true, c.errAt(path, "is %s, want an integer", typeName(v))
}

// Strings returns the list or tuple of strings at path.
func (c *Config) Strings(path ...string) ([]string, bool, error) {
	v, ok := c.Get(path...)
	if !ok || v == nil {
		return nil, false, nil
	}
	var xs []any
	switch x := v.(type) {
	case List:
		xs = x
	case Tuple:
		xs = x
	default:
		return nil, true, c.errAt(path, "is %s, want a list of strings", typeName(v))
	}
	out := make([]string, len(xs))
	for n, e := range xs {
		s, ok := e.(string)
		if !ok {
			return nil, true, c.errAt(path, "item %d is %s, want a string", n, typeName(e))
		}
		out[n] = s
	}
	return out, true, nil
}

// truth is Python's bool().
func truth(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case *big.Int:
		return x.Sign() != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case List:
		return len(x) > 0
	case Tuple:
		return len(x) > 0
	case Set:
		return len(x) > 0
	case Dict:
		return len(x) > 0
	}
	return true
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "a bool"
	case int64, *big.Int:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a string"
	case List:
		return "a list"
	case Tuple:
		return "a tuple"
	case Set:
		return "a set"
	case Dict:
		return "a dict"
	}
	return fmt.Sprintf("%v", v)
}

// JSON returns the config as one JSON object: keys as mock names them,
// sorted; tuples and sets as arrays; None as null.
func (c *Config) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(jsonSafe(c.values)); err != nil {
		return nil, fmt.Errorf("config %s: json: %w", c.name, err)
	}
	return buf.Bytes(), nil
}

// jsonSafe returns v with non-finite floats (which JSON cannot hold) as
// the strings Python prints for them, copying only containers that change.
func jsonSafe(v any) any {
	out, _ := safe(v)
	return out
}

func safe(v any) (any, bool) {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return pyFloat(x), true
		}
	case List:
		return safeSeq(x)
	case Tuple:
		return safeSeq(x)
	case Set:
		return safeSeq(x)
	case Dict:
		var out map[string]any
		for k, e := range x {
			s, changed := safe(e)
			if !changed {
				continue
			}
			if out == nil {
				out = make(map[string]any, len(x))
				for k2, e2 := range x {
					out[k2] = e2
				}
			}
			out[k] = s
		}
		if out != nil {
			return out, true
		}
	}
	return v, false
}

func safeSeq(xs []any) (any, bool) {
	var out []any
	for n, e := range xs {
		s, changed := safe(e)
		if !changed {
			continue
		}
		if out == nil {
			out = append([]any(nil), xs...)
		}
		out[n] = s
	}
	if out != nil {
		return out, true
	}
	return xs, false
}

// finishLoad does what mock does after the last file: the %_buildhost
// macro, the use_bootstrap_container rename, the values the command line
// step derives without options (rpmbuild_arch, repo_arch), then renders
// every value.
func finishLoad(o *optsDict, name, file string) (*Config, error) {
	if v, ok := o.get("use_container_host_hostname"); ok && bool(v.Truth()) {
		if mv, ok := o.get("macros"); ok {
			if m, ok := mv.(*starlark.Dict); ok {
				if _, found, _ := m.Get(starlark.String("%_buildhost")); !found {
					_ = m.SetKey(starlark.String("%_buildhost"), starlark.String(hostName()))
				}
			}
		}
	}
	if v, ok := o.get("use_bootstrap_container"); ok {
		o.set("use_bootstrap", v)
	}

	conv := newConverter()
	order := make([]string, 0, o.d.Len())
	raw := make(Dict, o.d.Len())
	for _, it := range o.d.Items() {
		g, err := conv.conv(it[1])
		if err != nil {
			return nil, &Error{File: file, Msg: fmt.Sprintf("%s: %v", keyPath([]string{pyStr(mustConv(it[0]))}), err)}
		}
		k := pyStr(mustConv(it[0]))
		if _, dup := raw[k]; !dup {
			order = append(order, k)
		}
		raw[k] = g
	}
	c := &Config{name: name, file: file, values: make(Dict, len(raw)), order: order, where: o.where}

	r := newRenderer(raw)
	render := func(k string) (any, error) {
		v, err := r.renderValue(raw[k], keyPath([]string{k}), 0)
		if err != nil {
			if w, ok := c.where[k]; ok {
				return nil, &Error{File: w.file, Line: w.line, Msg: err.Error()}
			}
			return nil, &Error{File: file, Msg: err.Error()}
		}
		return v, nil
	}
	// set_config_opts_per_cmdline, without options: mock reads (and so
	// renders) target_arch for these.
	if v, ok := raw["rpmbuild_arch"]; !ok || isNone(v) {
		ta, err := render("target_arch")
		if err != nil {
			return nil, err
		}
		setRaw(raw, &c.order, r, "rpmbuild_arch", ta)
	}
	if ra, err := render("repo_arch"); err != nil {
		return nil, err
	} else if !truth(fromNone(ra)) {
		ta, err := render("target_arch")
		if err != nil {
			return nil, err
		}
		var v any = ta
		if m, ok := raw["repo_arch_map"].(Dict); ok {
			if mapped, ok := m[pyStr(ta)]; ok {
				v = mapped
			}
		}
		setRaw(raw, &c.order, r, "repo_arch", v)
	}

	for _, k := range c.order {
		v, err := render(k)
		if err != nil {
			return nil, err
		}
		c.values[k] = v
	}
	// None stays a distinct value until every key is rendered: containers
	// are shared with the template context.
	for k, v := range c.values {
		c.values[k] = finish(v)
	}
	return c, nil
}

func isNone(v any) bool {
	_, ok := v.(noneT)
	return ok || v == nil
}

func fromNone(v any) any {
	if isNone(v) {
		return nil
	}
	return v
}

// setRaw assigns a top-level key after loading, in the raw dict and in the
// template context (mock assigns into the same dict it renders from).
func setRaw(raw Dict, order *[]string, r *renderer, k string, v any) {
	if _, ok := raw[k]; !ok {
		*order = append(*order, k)
	}
	raw[k] = v
	r.env.Context.Set(k, v)
}
