package mockcfg

import (
	"fmt"
	"sort"

	"go.starlark.net/starlark"
)

// aliasSpec maps an alternative key name to the name mock stores it under.
// It mirrors the alias table of mock's setup_default_config_opts: the
// aliases apply to item get/set, "in", get(), update() and setdefault(),
// but not to deletion, and the Jinja context only has the stored names.
var aliasSpec = func() map[string]string {
	a := map[string]string{
		"yum.conf":  "dnf.conf",
		"dnf5.conf": "dnf.conf",
		"dnf4.conf": "dnf.conf",
	}
	for _, k := range []string{"command", "common_opts", "install_command",
		"disable_plugins", "avoid_opts", "builddep_opts"} {
		a["dnf_"+k] = "dnf4_" + k
	}
	for _, pm := range []string{"dnf4", "dnf5", "yum", "microdnf"} {
		a["system_"+pm+"_command"] = pm + "_system_command"
	}
	a["system_dnf_command"] = "dnf4_system_command"
	return a
}()

// CanonicalKey returns the name mock stores key under (resolving the
// dnf.conf, dnf4_* and system_*_command aliases).
func CanonicalKey(key string) string {
	if c, ok := aliasSpec[key]; ok {
		return c
	}
	return key
}

// optsDict is config_opts as Starlark code sees it: a dict whose item
// access resolves mock's key aliases.
type optsDict struct {
	d *starlark.Dict
	// where each top-level key was last assigned, for error messages
	where  map[string]origin
	thread *starlark.Thread
	lines  []origin // line origins of the file being run
}

var (
	_ starlark.HasSetKey       = (*optsDict)(nil)
	_ starlark.IterableMapping = (*optsDict)(nil)
	_ starlark.Sequence        = (*optsDict)(nil)
	_ starlark.HasAttrs        = (*optsDict)(nil)
)

func newOptsDict() *optsDict {
	return &optsDict{d: starlark.NewDict(256), where: map[string]origin{}}
}

func resolveAlias(k starlark.Value) starlark.Value {
	if s, ok := k.(starlark.String); ok {
		if c, ok := aliasSpec[string(s)]; ok {
			return starlark.String(c)
		}
	}
	return k
}

func (o *optsDict) String() string        { return o.d.String() }
func (o *optsDict) Type() string          { return "dict" }
func (o *optsDict) Freeze()               {}
func (o *optsDict) Truth() starlark.Bool  { return o.d.Len() > 0 }
func (o *optsDict) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable type: dict") }
func (o *optsDict) Len() int              { return o.d.Len() }
func (o *optsDict) Iterate() starlark.Iterator {
	return o.d.Iterate()
}
func (o *optsDict) Items() []starlark.Tuple { return o.d.Items() }

func (o *optsDict) Get(k starlark.Value) (starlark.Value, bool, error) {
	return o.d.Get(resolveAlias(k))
}

func (o *optsDict) SetKey(k, v starlark.Value) error {
	k = resolveAlias(k)
	if s, ok := k.(starlark.String); ok && o.thread != nil {
		// The innermost Starlark frame with a position is the statement
		// doing the assignment (builtins such as update() have none).
		for i := 0; i < o.thread.CallStackDepth(); i++ {
			if l := int(o.thread.CallFrame(i).Pos.Line); l >= 1 && l <= len(o.lines) {
				o.where[string(s)] = o.lines[l-1]
				break
			}
		}
	}
	return o.d.SetKey(k, v)
}

// set assigns a key from Go (defaults); no alias, no origin.
func (o *optsDict) set(k string, v starlark.Value) {
	_ = o.d.SetKey(starlark.String(k), v)
}

func (o *optsDict) get(k string) (starlark.Value, bool) {
	v, ok, _ := o.d.Get(starlark.String(k))
	return v, ok
}

var optsMethods = []string{"clear", "copy", "get", "items", "keys", "pop", "popitem", "setdefault", "update", "values"}

func (o *optsDict) AttrNames() []string { return optsMethods }

func (o *optsDict) Attr(name string) (starlark.Value, error) {
	i := sort.SearchStrings(optsMethods, name)
	if i == len(optsMethods) || optsMethods[i] != name {
		return nil, nil
	}
	return starlark.NewBuiltin(name, func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return o.call(th, b, args, kwargs)
	}).BindReceiver(o), nil
}

// call runs one of the dict methods config files call on config_opts.
// It is long because it is one switch over Python's dict methods, each a
// few lines, kept together so that the whole surface is seen at once.
func (o *optsDict) call(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	switch b.Name() {
	case "get":
		var k, dflt starlark.Value = nil, starlark.None
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &k, &dflt); err != nil {
			return nil, err
		}
		v, ok, err := o.Get(k)
		if err != nil {
			return nil, err
		}
		if !ok {
			return dflt, nil
		}
		return v, nil
	case "keys", "values", "items":
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
			return nil, err
		}
		items := o.d.Items()
		out := make([]starlark.Value, len(items))
		for i, it := range items {
			switch b.Name() {
			case "keys":
				out[i] = it[0]
			case "values":
				out[i] = it[1]
			default:
				out[i] = it
			}
		}
		return starlark.NewList(out), nil
	case "setdefault":
		var k, dflt starlark.Value = nil, starlark.None
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &k, &dflt); err != nil {
			return nil, err
		}
		v, ok, err := o.Get(k)
		if err != nil {
			return nil, err
		}
		if ok {
			return v, nil
		}
		return dflt, o.SetKey(k, dflt)
	case "pop":
		// Python's MutableMapping.pop reads through the alias but deletes
		// the literal key, so popping an alias fails as it does in mock.
		var k, dflt starlark.Value
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &k, &dflt); err != nil {
			return nil, err
		}
		v, ok, err := o.Get(k)
		if err != nil {
			return nil, err
		}
		if !ok {
			if dflt != nil {
				return dflt, nil
			}
			return nil, fmt.Errorf("pop: key %s not found", k)
		}
		if _, found, _ := o.d.Delete(k); !found {
			return nil, fmt.Errorf("KeyError: %s", k)
		}
		return v, nil
	case "popitem":
		items := o.d.Items()
		if len(items) == 0 {
			return nil, fmt.Errorf("popitem: empty dict")
		}
		last := items[len(items)-1]
		_, _, _ = o.d.Delete(last[0])
		return last, nil
	case "clear":
		return starlark.None, o.d.Clear()
	case "copy":
		cp := starlark.NewDict(o.d.Len())
		for _, it := range o.d.Items() {
			_ = cp.SetKey(it[0], it[1])
		}
		return cp, nil
	case "update":
		if len(args) > 1 {
			return nil, fmt.Errorf("update: got %d arguments, want at most 1", len(args))
		}
		if len(args) == 1 {
			if err := updateFrom(o, args[0]); err != nil {
				return nil, err
			}
		}
		for _, kv := range kwargs {
			if err := o.SetKey(kv[0], kv[1]); err != nil {
				return nil, err
			}
		}
		return starlark.None, nil
	}
	return nil, fmt.Errorf("unknown method %s", b.Name())
}

// updateFrom implements dict.update's positional argument: a mapping or an
// iterable of pairs.
func updateFrom(o *optsDict, src starlark.Value) error {
	if m, ok := src.(starlark.IterableMapping); ok {
		for _, it := range m.Items() {
			if err := o.SetKey(it[0], it[1]); err != nil {
				return err
			}
		}
		return nil
	}
	it, ok := src.(starlark.Iterable)
	if !ok {
		return fmt.Errorf("update: got %s, want iterable", src.Type())
	}
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for i := 0; iter.Next(&x); i++ {
		pair, ok := x.(starlark.Indexable)
		if !ok || pair.Len() != 2 {
			return fmt.Errorf("update: element #%d is not a pair", i)
		}
		if err := o.SetKey(pair.Index(0), pair.Index(1)); err != nil {
			return err
		}
	}
	return nil
}
