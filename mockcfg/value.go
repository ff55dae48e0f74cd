package mockcfg

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
)

// Config values are plain Go values:
//
//	None    nil
//	bool    bool
//	int     int64 (*big.Int when it does not fit)
//	float   float64
//	str     string (bytes too)
//	list    List
//	tuple   Tuple
//	set     Set
//	dict    Dict (keys converted to strings with Python's str())
//	other   Opaque (functions and the like: their repr)
//
// The named types keep the Python distinctions mock relies on (templates
// are rendered inside lists and dicts but not inside tuples or sets) and
// print themselves as Python does when a template interpolates them.

// List is a Python list.
type List []any

// Tuple is a Python tuple.
type Tuple []any

// Set is a Python set (in iteration order).
type Set []any

// Dict is a Python dict.
type Dict map[string]any

// Opaque stands for a value that has no data form, such as a function.
type Opaque string

func (v List) String() string  { return pyRepr(v) }
func (v Tuple) String() string { return pyRepr(v) }
func (v Set) String() string   { return pyRepr(v) }
func (v Dict) String() string  { return pyRepr(v) }

// noneT is None while templates are rendered: a distinct value, so that
// Jinja tells a key set to None (prints "None", equals None) from an
// undefined name (prints "", differs from None), as Jinja2 does. Its bool
// kind makes it falsy to the template engine.
type noneT bool

const pyNone noneT = false

func (noneT) String() string { return "None" }

// fromStarlark converts a Starlark value into the Go form above; None
// becomes pyNone (see finish for the public form). Shared containers stay
// shared (mock renders them in place, so a change is seen from every key
// that holds them); a container that holds itself is an error.
type converter struct {
	done map[any]any
	busy map[any]bool
}

func newConverter() *converter {
	return &converter{done: map[any]any{}, busy: map[any]bool{}}
}

func (c *converter) conv(v starlark.Value) (any, error) {
	switch x := v.(type) {
	case starlark.NoneType:
		return pyNone, nil
	case starlark.Bool:
		return bool(x), nil
	case starlark.Int:
		if n, ok := x.Int64(); ok {
			return n, nil
		}
		return x.BigInt(), nil
	case starlark.Float:
		return float64(x), nil
	case starlark.String:
		return string(x), nil
	case starlark.Bytes:
		return string(x), nil
	case starlark.Tuple:
		out := make(Tuple, len(x))
		for n, e := range x {
			g, err := c.conv(e)
			if err != nil {
				return nil, err
			}
			out[n] = g
		}
		return out, nil
	case *starlark.List, *starlark.Dict, *starlark.Set, *optsDict:
		if g, ok := c.done[x]; ok {
			return g, nil
		}
		if c.busy[x] {
			return nil, fmt.Errorf("a %s contains itself", v.Type())
		}
		c.busy[x] = true
		defer delete(c.busy, x)
		var out any
		var err error
		switch y := x.(type) {
		case *starlark.List:
			out, err = c.seq(y, y.Len(), func(vs []any) any { return List(vs) })
		case *starlark.Set:
			out, err = c.seq(y, y.Len(), func(vs []any) any { return Set(vs) })
		case *starlark.Dict:
			out, err = c.dict(y.Items())
		case *optsDict:
			out, err = c.dict(y.d.Items())
		}
		if err != nil {
			return nil, err
		}
		c.done[x] = out
		return out, nil
	case *starlark.Function:
		return Opaque("<function " + x.Name() + ">"), nil
	case *starlark.Builtin:
		return Opaque("<built-in function " + x.Name() + ">"), nil
	}
	return Opaque(v.String()), nil
}

func (c *converter) seq(it starlark.Iterable, n int, mk func([]any) any) (any, error) {
	out := make([]any, 0, n)
	iter := it.Iterate()
	defer iter.Done()
	var e starlark.Value
	for iter.Next(&e) {
		g, err := c.conv(e)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return mk(out), nil
}

func (c *converter) dict(items []starlark.Tuple) (any, error) {
	out := make(Dict, len(items))
	for _, it := range items {
		g, err := c.conv(it[1])
		if err != nil {
			return nil, err
		}
		k, err := c.conv(it[0])
		if err != nil {
			return nil, err
		}
		out[pyStr(k)] = g
	}
	return out, nil
}

// finish turns pyNone into nil everywhere, in place.
func finish(v any) any {
	switch x := v.(type) {
	case noneT:
		return nil
	case List:
		for n := range x {
			x[n] = finish(x[n])
		}
	case Tuple:
		for n := range x {
			x[n] = finish(x[n])
		}
	case Set:
		for n := range x {
			x[n] = finish(x[n])
		}
	case Dict:
		for k := range x {
			x[k] = finish(x[k])
		}
	}
	return v
}

// pyStr is Python's str() of a value.
func pyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return pyRepr(v)
}

// pyRepr is Python's repr() of a value. Dict keys print sorted (the Go form
// does not keep insertion order).
func pyRepr(v any) string {
	var sb strings.Builder
	writeRepr(&sb, v, 0)
	return sb.String()
}

func writeRepr(sb *strings.Builder, v any, depth int) {
	if depth > 100 {
		sb.WriteString("...")
		return
	}
	switch x := v.(type) {
	case nil, noneT:
		sb.WriteString("None")
	case bool:
		if x {
			sb.WriteString("True")
		} else {
			sb.WriteString("False")
		}
	case int64:
		sb.WriteString(strconv.FormatInt(x, 10))
	case int:
		sb.WriteString(strconv.Itoa(x))
	case *big.Int:
		sb.WriteString(x.String())
	case float64:
		sb.WriteString(pyFloat(x))
	case string:
		sb.WriteString(pyQuote(x))
	case Opaque:
		sb.WriteString(string(x))
	case List:
		writeSeq(sb, "[", "]", x, depth)
	case Tuple:
		if len(x) == 1 {
			sb.WriteString("(")
			writeRepr(sb, x[0], depth+1)
			sb.WriteString(",)")
			return
		}
		writeSeq(sb, "(", ")", x, depth)
	case Set:
		if len(x) == 0 {
			sb.WriteString("set()")
			return
		}
		writeSeq(sb, "{", "}", x, depth)
	case Dict:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sb.WriteString("{")
		for n, k := range keys {
			if n > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(pyQuote(k))
			sb.WriteString(": ")
			writeRepr(sb, x[k], depth+1)
		}
		sb.WriteString("}")
	default:
		fmt.Fprint(sb, x)
	}
}

func writeSeq(sb *strings.Builder, open, close string, xs []any, depth int) {
	sb.WriteString(open)
	for n, e := range xs {
		if n > 0 {
			sb.WriteString(", ")
		}
		writeRepr(sb, e, depth+1)
	}
	sb.WriteString(close)
}

// pyFloat formats a float as Python's repr does.
func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	a := math.Abs(f)
	if a != 0 && (a < 1e-4 || a >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Go writes e+16 / e-05; Python writes e+16 / e-05 too, but never
		// a single-digit exponent: keep two digits at least.
		return s
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// pyQuote quotes a string as Python's repr does.
func pyQuote(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var sb strings.Builder
	sb.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, r)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte(q)
	return sb.String()
}
